"""The agent's HTTP client for the server (docs/agent-protocol.md).

httpx errors and HTTP statuses are mapped to :mod:`tagtrain.errors` here, where they enter, each
with a sentence a person can act on:

    Unavailable    the server cannot be reached, or answered 5xx / 429: retry later
    Unauthorized   401: the machine key is wrong or revoked
    Forbidden      403: the key is fine, the thing asked for is not this machine's
    NotFound       404: no such path (a server too old for this agent)
    BadInput       400 (TooLarge 413, InvalidImage 422): the server will never take this
                   capture; the caller drops it
    TagtrainError  anything else, including an answer that is not the expected JSON
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from tagtrain.agent.capture_queue import CaptureMeta
from tagtrain.errors import (
    BadInput,
    Forbidden,
    InvalidImage,
    NotFound,
    TagtrainError,
    TooLarge,
    Unauthorized,
    Unavailable,
)
from tagtrain.machine_config import AgentStatus, MachineConfig, parse_machine_config

MAX_PACKAGE_BYTES = 512 * 1024 * 1024
_AGENT_API = "/api/v1/agent/"


@dataclass(frozen=True)
class Deployment:
    """The model version the server wants this machine to run."""

    model: str
    version: int
    pinned: bool
    manifest_sha256: str
    package_url: str


@dataclass(frozen=True)
class RemoteConfig:
    machine_id: int
    machine_name: str
    config: MachineConfig
    deployment: Deployment | None
    live_view: bool = False  # someone watches through the server: push live frames


@dataclass(frozen=True)
class UploadOutcome:
    image_id: int
    existing: bool  # the server had these bytes already (a capture sent twice)


class ServerLink:
    def __init__(self, base_url: str, machine_key: str, *, timeout_s: float = 10) -> None:
        self.base_url = base_url.rstrip("/")
        self._client = httpx.Client(
            base_url=self.base_url,
            headers={"Authorization": f"Bearer {machine_key}"},
            timeout=timeout_s,
        )

    def fetch_config(self) -> RemoteConfig:
        body = self._json(self._call("GET", f"{_AGENT_API}config", what="the machine config"))
        try:
            machine, deployment = body["machine"], body["deployment"]
            return RemoteConfig(
                machine_id=int(machine["id"]),
                machine_name=str(machine["name"]),
                config=parse_machine_config(body["config"], where="the config from the server"),
                deployment=None if deployment is None else _deployment(deployment),
                live_view=body.get("live_view") is True,  # absent from older servers: off
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise self._unexpected("the machine config", exc) from exc

    def download_package(
        self, deployment: Deployment, *, max_bytes: int = MAX_PACKAGE_BYTES
    ) -> bytes:
        """The package zip, streamed; TooLarge past ``max_bytes``."""
        what = f"the package {deployment.model}@{deployment.version}"
        # The key goes only to this server's agent API, whatever URL an answer names.
        if not deployment.package_url.startswith(_AGENT_API):
            raise BadInput(f"the server named {deployment.package_url!r} for {what}; refusing")
        chunks: list[bytes] = []
        received = 0
        with (
            self._errors(what),
            self._client.stream("GET", deployment.package_url) as response,
        ):
            if response.status_code != 200:
                response.read()
                self._raise_for(response, what)
            for chunk in response.iter_bytes():
                received += len(chunk)
                if received > max_bytes:
                    raise TooLarge(f"{what} is over {max_bytes // 2**20} MB; not loading it")
                chunks.append(chunk)
        return b"".join(chunks)

    def upload_capture(self, jpeg: bytes, meta: CaptureMeta) -> UploadOutcome:
        what = f"capture {meta.capture_id}"
        data: dict[str, Any] = {
            "capture_id": meta.capture_id,
            "camera": meta.camera,
            "captured_at": meta.captured_at.isoformat(),
        }
        if meta.tags:
            data["tags"] = list(meta.tags)
        files = {"file": (f"{meta.capture_id}.jpg", jpeg, "image/jpeg")}
        response = self._call("POST", f"{_AGENT_API}captures", what=what, data=data, files=files)
        body = self._json(response)
        try:
            return UploadOutcome(image_id=int(body["image_id"]), existing=bool(body["existing"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise self._unexpected(f"the upload of {what}", exc) from exc

    def post_frame(self, camera: str, jpeg: bytes) -> None:
        """Relay one annotated live frame of ``camera`` to the server's viewers."""
        files = {"file": (f"{camera}.jpg", jpeg, "image/jpeg")}
        what = f"a live frame of camera {camera!r}"
        self._call("POST", f"{_AGENT_API}frames", what=what, data={"camera": camera}, files=files)

    def post_status(self, status: AgentStatus) -> None:
        self._call(
            "POST", f"{_AGENT_API}status", what="the status", json=status.model_dump(mode="json")
        )

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> ServerLink:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- errors ------------------------------------------------------------------------------

    def _call(self, method: str, path: str, *, what: str, **kwargs: Any) -> httpx.Response:
        with self._errors(what):
            response = self._client.request(method, path, **kwargs)
        if not response.is_success:
            self._raise_for(response, what)
        return response

    def _errors(self, what: str) -> _TransportErrors:
        return _TransportErrors(self.base_url, what)

    def _raise_for(self, response: httpx.Response, what: str) -> None:
        status, detail = response.status_code, _detail(response)
        if status == 401:
            raise Unauthorized(
                f"the server at {self.base_url} refused this machine key (wrong or revoked); "
                "make a new key on the machine's page and restart the agent with it"
            )
        if status == 403:
            raise Forbidden(f"the server at {self.base_url} does not allow {what}: {detail}")
        if status == 404:
            raise NotFound(
                f"the server at {self.base_url} has no {response.request.url.path} ({detail}); "
                "is it a tagtrain server as new as this agent?"
            )
        if status == 413:
            raise TooLarge(f"the server refused {what} as too large: {detail}")
        if status == 422:
            raise InvalidImage(what, detail)
        if status == 400:
            raise BadInput(f"the server refused {what}: {detail}")
        if status == 429 or status >= 500:
            raise Unavailable(
                f"the server at {self.base_url} cannot take {what} now ({status}: {detail}); "
                "will retry"
            )
        raise TagtrainError(f"the server at {self.base_url} answered {status} for {what}: {detail}")

    def _json(self, response: httpx.Response) -> Any:
        try:
            return response.json()
        except ValueError as exc:
            raise self._unexpected(str(response.request.url.path), exc) from exc

    def _unexpected(self, what: str, exc: Exception) -> TagtrainError:
        return TagtrainError(
            f"the server at {self.base_url} sent an unexpected answer for {what} ({exc}); "
            "is it a tagtrain server as new as this agent?"
        )


class _TransportErrors:
    """Turns httpx's network errors (refused, DNS, timeout, reset) into Unavailable."""

    def __init__(self, base_url: str, what: str) -> None:
        self.base_url, self.what = base_url, what

    def __enter__(self) -> None:
        return None

    def __exit__(self, _type: object, exc: BaseException | None, _tb: object) -> None:
        if isinstance(exc, httpx.TransportError):
            reason = str(exc) or type(exc).__name__
            raise Unavailable(
                f"cannot reach the server at {self.base_url}: {reason} (while sending or "
                f"fetching {self.what}); will retry"
            ) from exc


def _deployment(raw: dict[str, Any]) -> Deployment:
    return Deployment(
        model=str(raw["model"]),
        version=int(raw["version"]),
        pinned=bool(raw["pinned"]),
        manifest_sha256=str(raw["manifest_sha256"]),
        package_url=str(raw["package_url"]),
    )


def _detail(response: httpx.Response) -> str:
    """The server's ``{"detail": ...}`` sentence, else the start of the body."""
    try:
        detail = response.json().get("detail")
    except (ValueError, AttributeError):
        detail = None
    if detail is None:
        return response.text[:200].strip() or response.reason_phrase
    return detail if isinstance(detail, str) else str(detail)[:500]
