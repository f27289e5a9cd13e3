"""The vision and ML-model services of a machine, whatever speaks them (the local HTTP API, Viam's
gRPC API). Names mirror Viam's: GetClassifications, GetClassificationsFromCamera, GetProperties,
CaptureAllFromCamera; Infer, Metadata.

Labels pass two floors: the package's thresholds (``Classifier.top``) and the vision config's
minimum confidences (``default_minimum_confidence``, ``label_confidences``), so every view of a
machine reports the same labels.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from tagtrain.agent.model_slot import ModelSlot
from tagtrain.errors import NotFound
from tagtrain.machine_config import VisionConfig
from tagtrain.runtime import Classification

JPEG_QUALITY = 85


@dataclass(frozen=True, slots=True)
class Frame:
    """A camera's newest frame: RGB pixels, when it was read, and every label that passed the
    package's thresholds (highest first) from the model that was served then."""

    rgb: NDArray[np.uint8]
    at: datetime
    classifications: list[Classification]
    model: str | None


class Frames(Protocol):
    """Where the services find camera frames (the agent's camera loops)."""

    def names(self) -> list[str]: ...

    def latest(self, camera: str) -> Frame:
        """The newest frame; NotFound for an unknown camera, Unavailable when it has none."""
        ...


@dataclass(frozen=True, slots=True)
class CameraCapture:
    """CaptureAllFromCamera's answer."""

    camera: str
    at: datetime
    width: int
    height: int
    jpeg: bytes | None
    classifications: list[Classification] | None


class NoCameras:
    def names(self) -> list[str]:
        return []

    def latest(self, camera: str) -> Frame:
        raise NotFound(f"this machine has no camera named {camera!r}; it has none")


class Services:
    def __init__(self, slot: ModelSlot, frames: Frames, vision: VisionConfig) -> None:
        self.slot = slot
        self.frames = frames
        self.vision = vision

    @property
    def name(self) -> str:
        return self.vision.name

    # -- vision ------------------------------------------------------------------------------

    def get_classifications(
        self, image: bytes, n: int, *, name: str = "the image"
    ) -> list[Classification]:
        """Classify encoded image bytes (JPEG, PNG...); ``n <= 0`` returns every label."""
        return self.floor(self.slot.get().classify_bytes(image, 0, name=name), n)

    def classify_frame(self, rgb: NDArray[np.uint8], n: int) -> list[Classification]:
        return self.floor(self.slot.get().classify_array(rgb, 0), n)

    def get_classifications_from_camera(self, camera: str, n: int) -> list[Classification]:
        """The camera's newest frame, as the camera loop classified it."""
        return self.floor(self.frames.latest(camera).classifications, n)

    def get_properties(self) -> dict[str, bool]:
        self.slot.get()
        return {
            "classifications_supported": True,
            "detections_supported": False,
            "object_point_clouds_supported": False,
        }

    def capture_all_from_camera(
        self,
        camera: str,
        *,
        return_image: bool = True,
        return_classifications: bool = True,
        n: int = 0,
    ) -> CameraCapture:
        frame = self.frames.latest(camera)
        height, width = frame.rgb.shape[:2]
        return CameraCapture(
            camera=camera,
            at=frame.at,
            width=width,
            height=height,
            jpeg=encode_jpeg(frame.rgb) if return_image else None,
            classifications=self.floor(frame.classifications, n)
            if return_classifications
            else None,
        )

    def floor(self, found: list[Classification], n: int) -> list[Classification]:
        """Drop labels under the vision config's minimum confidence; keep the top ``n`` if > 0."""
        kept = [c for c in found if c.confidence >= self.vision.minimum_for(c.class_name)]
        return kept[:n] if n > 0 else kept

    # -- ML model ----------------------------------------------------------------------------

    def metadata(self) -> dict[str, Any]:
        return self.slot.get().metadata()

    def infer(self, tensors: dict[str, NDArray[Any]]) -> dict[str, NDArray[np.float32]]:
        return self.slot.get().infer(tensors)


def encode_jpeg(rgb: NDArray[np.uint8], quality: int = JPEG_QUALITY) -> bytes:
    out = io.BytesIO()
    Image.fromarray(rgb).save(out, format="JPEG", quality=quality)
    return out.getvalue()
