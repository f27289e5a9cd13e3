"""Viam's messages <-> tagtrain's: images a Viam client sends (its raw RGBA frames included),
classifications, tensors, the model's metadata and the GetStatus answer."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray
from viam.media.viam_rgba import RGBA_HEADER_LENGTH, RGBA_MAGIC_NUMBER
from viam.proto.service.mlmodel import File, InferRequest, LabelType, Metadata, TensorInfo
from viam.proto.service.vision import Classification as ViamClassification
from viam.services.mlmodel.utils import flat_tensors_to_ndarrays
from viam.utils import dict_to_struct

from tagtrain.agent.services import Services
from tagtrain.errors import BadInput, InvalidImage
from tagtrain.runtime import Classification


def classify_image_bytes(services: Services, data: bytes, n: int) -> list[Classification]:
    """Classify what a Viam client sent. Its ``mime_type`` is not trusted (viam-sdk's
    VisionClient sends ``image/jpeg`` whatever the image is): Viam's raw RGBA frames are told by
    their magic number, anything else is decoded as an image file (JPEG, PNG...)."""
    if data.startswith(RGBA_MAGIC_NUMBER):
        return services.classify_frame(decode_viam_rgba(data), n)
    return services.get_classifications(data, n)


def decode_viam_rgba(data: bytes, name: str = "the image") -> NDArray[np.uint8]:
    """Viam's ``image/vnd.viam.rgba``: "RGBA", width and height as big-endian uint32, then the
    pixels, 4 bytes each -> uint8 ``(H, W, 3)`` RGB (alpha dropped)."""
    if len(data) < RGBA_HEADER_LENGTH:
        raise InvalidImage(name, "a Viam RGBA image shorter than its 12-byte header")
    width = int.from_bytes(data[4:8], "big")
    height = int.from_bytes(data[8:12], "big")
    want = RGBA_HEADER_LENGTH + width * height * 4
    if width == 0 or height == 0 or len(data) != want:
        raise InvalidImage(
            name,
            f"a Viam RGBA image of {width}x{height} pixels needs {want} bytes, got {len(data)}",
        )
    pixels = np.frombuffer(data, np.uint8, offset=RGBA_HEADER_LENGTH).reshape(height, width, 4)
    return np.ascontiguousarray(pixels[..., :3])


def to_viam(found: list[Classification]) -> list[ViamClassification]:
    return [ViamClassification(class_name=c.class_name, confidence=c.confidence) for c in found]


def viam_metadata(meta: dict[str, Any]) -> Metadata:
    """``Classifier.metadata()``'s dict -> Viam's ``Metadata`` message."""
    return Metadata(
        name=meta["name"],
        type=meta["type"],
        description=meta["description"],
        input_info=[_tensor_info(t) for t in meta["input_info"]],
        output_info=[_tensor_info(t) for t in meta["output_info"]],
    )


def _tensor_info(info: dict[str, Any]) -> TensorInfo:
    files = [
        File(
            name=f["name"],
            description=f["description"],
            label_type=LabelType.Value(f.get("label_type", "LABEL_TYPE_UNSPECIFIED")),
        )
        for f in info.get("associated_files", [])
    ]
    return TensorInfo(
        name=info["name"],
        description=info["description"],
        data_type=info["data_type"],
        shape=info["shape"],
        associated_files=files,
        extra=dict_to_struct(info.get("extra") or {}),
    )


def from_flat_tensors(request: InferRequest) -> dict[str, NDArray[Any]]:
    """Viam's flat tensors -> arrays; a tensor whose data does not fill its shape is bad input."""
    try:
        return dict(flat_tensors_to_ndarrays(request.input_tensors))
    except ValueError as exc:  # numpy cannot reshape the data to the stated shape
        shapes = {k: list(t.shape) for k, t in request.input_tensors.tensors.items()}
        raise BadInput(f"an input tensor's data does not match its shape {shapes}: {exc}") from exc


def status(services: Services) -> dict[str, Any]:
    """GetStatus's answer. No None in it: viam-sdk's client reads a Struct's null back as 0."""
    ref = services.slot.ref
    return {"ready": ref is not None, "model": ref or "", "cameras": services.frames.names()}
