"""A Python client for the vision and ML-model services of a tagtrain server or machine.

The method names are the ones Viam's Python SDK uses, so code moves between the two easily::

    from tagtrain.client import VisionClient, MLModelClient

    vision = VisionClient("http://127.0.0.1:8081", "classifier")   # a machine's agent
    vision.get_classifications(open("cat.jpg", "rb").read(), 3)
    vision.get_classifications_from_camera("cam", 3)

    server = VisionClient("http://tagtrain:8000", "trash@3", api_key="tt_...")  # NAME[@VERSION]

Errors come back as the tagtrain exception the service raised (BadInput, NotFound, ...), with its
sentence; an unreachable service raises Unavailable.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Self

import httpx
import numpy as np
from numpy.typing import NDArray

from tagtrain.errors import (
    BadInput,
    Forbidden,
    NotFound,
    TagtrainError,
    TooLarge,
    Unauthorized,
    Unavailable,
)
from tagtrain.runtime import Classification
from tagtrain.runtime.tensors import decode_tensors, encode_tensors

_BY_STATUS: dict[int, type[TagtrainError]] = {
    400: BadInput,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    413: TooLarge,
    422: BadInput,  # e.g. not a valid image
    503: Unavailable,
}


@dataclass(frozen=True)
class CameraCapture:
    """``capture_all_from_camera``'s answer: the frame (JPEG bytes) and its classifications."""

    camera: str
    captured_at: datetime
    width: int
    height: int
    image: bytes | None
    classifications: list[Classification] | None


class _Service:
    def __init__(
        self, url: str, name: str, *, api_key: str | None = None, timeout_s: float = 30.0
    ) -> None:
        self.name = name
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.Client(base_url=url.rstrip("/"), headers=headers, timeout=timeout_s)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise Unavailable(f"cannot reach {self._http.base_url}: {exc}") from exc
        if response.status_code >= 400:
            raise _error(response)
        return response.json()


class VisionClient(_Service):
    """The vision service named ``name`` (a machine's, or ``MODEL[@VERSION]`` on a server)."""

    def get_classifications(self, image: bytes | str | Path, count: int) -> list[Classification]:
        """Classify an encoded image (bytes, or a file path): the top ``count`` (0 = all)."""
        data = Path(image).read_bytes() if isinstance(image, str | Path) else image
        body = self._call(
            "POST",
            f"/api/v1/vision/{self.name}/classifications",
            params={"n": count},
            content=data,
            headers={"Content-Type": "application/octet-stream"},
        )
        return _classifications(body["classifications"])

    def get_classifications_from_camera(self, camera_name: str, count: int) -> list[Classification]:
        body = self._call(
            "GET",
            f"/api/v1/vision/{self.name}/classifications-from-camera",
            params={"camera_name": camera_name, "n": count},
        )
        return _classifications(body["classifications"])

    def get_properties(self) -> dict[str, bool]:
        body: dict[str, bool] = self._call("GET", f"/api/v1/vision/{self.name}/properties")
        return body

    def capture_all_from_camera(
        self,
        camera_name: str,
        return_image: bool = True,
        return_classifications: bool = True,
        count: int = 0,
    ) -> CameraCapture:
        body = self._call(
            "GET",
            f"/api/v1/vision/{self.name}/capture-all-from-camera",
            params={
                "camera_name": camera_name,
                "return_image": return_image,
                "return_classifications": return_classifications,
                "n": count,
            },
        )
        found = body["classifications"]
        return CameraCapture(
            camera=body["camera"],
            captured_at=datetime.fromisoformat(body["captured_at"]),
            width=body["width"],
            height=body["height"],
            image=base64.b64decode(body["image"]) if body["image"] else None,
            classifications=None if found is None else _classifications(found),
        )


class MLModelClient(_Service):
    """The ML-model service: ``infer({"image": uint8 (N, H, W, 3)})`` -> ``{"probability": ...}``."""

    def infer(self, input_tensors: dict[str, NDArray[Any]]) -> dict[str, NDArray[Any]]:
        body = self._call(
            "POST",
            f"/api/v1/mlmodel/{self.name}/infer",
            json={"tensors": encode_tensors({k: np.asarray(v) for k, v in input_tensors.items()})},
        )
        return decode_tensors(body["tensors"])

    def metadata(self) -> dict[str, Any]:
        body: dict[str, Any] = self._call("GET", f"/api/v1/mlmodel/{self.name}/metadata")
        return body


def _classifications(rows: list[dict[str, Any]]) -> list[Classification]:
    return [Classification(str(r["class_name"]), float(r["confidence"])) for r in rows]


def _error(response: httpx.Response) -> TagtrainError:
    try:
        detail = response.json().get("detail")
    except ValueError:
        detail = None
    message = detail if isinstance(detail, str) else f"{response.status_code} {response.text[:200]}"
    return _BY_STATUS.get(response.status_code, TagtrainError)(message)
