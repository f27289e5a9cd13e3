"""Tensors over JSON for ``Infer``: ``{"dtype": "uint8", "shape": [1, 224, 224, 3], "data":
"<base64 of the C-order bytes>"}``. Base64 of raw bytes keeps a 224x224 image at ~200 kB instead
of the megabytes a list of numbers would take, and decodes without a copy per element."""

from __future__ import annotations

import base64
import binascii
import math
from typing import Any

import numpy as np
from numpy.typing import NDArray

from tagtrain.errors import BadInput, TooLarge

DTYPES = {"uint8", "int8", "int32", "int64", "float16", "float32", "float64"}
MAX_TENSOR_BYTES = 64 * 1024 * 1024


def encode_tensors(tensors: dict[str, NDArray[Any]]) -> dict[str, dict[str, Any]]:
    return {name: encode_tensor(array) for name, array in tensors.items()}


def encode_tensor(array: NDArray[Any]) -> dict[str, Any]:
    array = np.ascontiguousarray(array)
    return {
        "dtype": str(array.dtype),
        "shape": list(array.shape),
        "data": base64.b64encode(array.tobytes()).decode("ascii"),
    }


def decode_tensors(body: Any) -> dict[str, NDArray[Any]]:
    """``{"name": {"dtype", "shape", "data"}}`` -> arrays; BadInput names the tensor at fault."""
    if not isinstance(body, dict) or not body:
        raise BadInput('give tensors as {"name": {"dtype": ..., "shape": [...], "data": base64}}')
    return {str(name): decode_tensor(str(name), spec) for name, spec in body.items()}


def decode_tensor(name: str, spec: Any) -> NDArray[Any]:
    if not isinstance(spec, dict) or set(spec) != {"dtype", "shape", "data"}:
        raise BadInput(f"tensor {name!r} needs exactly the fields dtype, shape and data")
    dtype, shape, data = spec["dtype"], spec["shape"], spec["data"]
    if dtype not in DTYPES:
        raise BadInput(f"tensor {name!r}: dtype {dtype!r} is not one of {sorted(DTYPES)}")
    if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape):
        raise BadInput(f"tensor {name!r}: shape must be a list of sizes (0 or more)")
    want = math.prod(shape) * np.dtype(dtype).itemsize
    if want > MAX_TENSOR_BYTES:
        raise TooLarge(
            f"tensor {name!r} would be {want:,} bytes; the limit is {MAX_TENSOR_BYTES:,}"
        )
    try:
        raw = base64.b64decode(str(data), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise BadInput(f"tensor {name!r}: data is not base64 ({exc})") from exc
    if len(raw) != want:
        raise BadInput(
            f"tensor {name!r}: shape {shape} of {dtype} needs {want} bytes, got {len(raw)}"
        )
    return np.frombuffer(raw, dtype=dtype).reshape(shape)
