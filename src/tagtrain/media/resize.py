"""The model input: THE preprocessing shared by training and serving (Pillow + numpy, no torch).

A decoded picture (EXIF-oriented RGB, see :func:`tagtrain.media.decode.decode_image`) is
stretch-resized to ``size x size`` with Pillow's bilinear filter, aspect ratio not kept, and handed
over as uint8 ``(H, W, 3)`` RGB. Normalisation happens inside the exported network, so this is the
model package's ``image`` input exactly; training, evaluation, the runtime and the agent all call it.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from numpy.typing import NDArray
from PIL import Image


def model_input(rgb: Image.Image, size: int) -> NDArray[np.uint8]:
    """Stretch-resize an RGB picture to ``(size, size, 3)`` uint8, bilinear."""
    if rgb.mode != "RGB":
        raise ValueError(f"model_input needs an RGB image, got mode {rgb.mode!r} (use to_rgb)")
    if size <= 0:
        raise ValueError(f"size must be positive, got {size}")
    if rgb.size != (size, size):
        rgb = rgb.resize((size, size), Image.Resampling.BILINEAR)
    return np.asarray(rgb, dtype=np.uint8).copy()


def model_inputs(images: Iterable[Image.Image], size: int) -> NDArray[np.uint8]:
    """A batch of :func:`model_input`: ``(N, size, size, 3)`` uint8 (``N`` may be 0)."""
    batch = [model_input(img, size) for img in images]
    if not batch:
        return np.zeros((0, size, size, 3), dtype=np.uint8)
    return np.stack(batch)
