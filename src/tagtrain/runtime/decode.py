"""Image bytes -> the model input, fast for JPEGs (Pillow + numpy; no torch).

Everything goes through the shared preprocessing: EXIF orientation and RGB as
:func:`tagtrain.media.decode_image` does it, then :func:`tagtrain.media.model_input` (stretch,
bilinear). One shortcut, for JPEGs only and on by default (``draft=True``): Pillow's *draft mode*
asks libjpeg to decode straight at 1/2, 1/4 or 1/8 scale, choosing the largest reduction that still
leaves both sides at least the model's size. A 640x480 camera frame then decodes as 320x240 in a
third of the time, a 12-Mpx phone photo as 504x378 in a twelfth.

Why it is safe: the reduction happens in the DCT domain (libjpeg computes a smaller inverse DCT of
each 8x8 block: its low frequencies, i.e. a low-pass filter and decimation, without aliasing); the
picture is still at least the model's size, so the bilinear stretch that follows only shrinks it,
as it does for a fully decoded picture. The pixels differ from the full decode's by under one grey
level on average (a few tens on isolated edge pixels). Measured with EfficientNet-Lite0 and
trashnet photos re-encoded as JPEGs: at 640x480 (60 photos) the top-1 never changed and the
largest probability moved by 0.009 on average, 0.037 at most; at 1024x768 by 0.005 (0.026); at
4032x3024 by 0.002 (0.020), less than int8 moves them. Pictures smaller than twice the model size
(trashnet's 512x384, COCO's 640x428) decode exactly as in training. Pass ``draft=False`` where
bit-exactness with training matters more than speed (``tagtrain evaluate``, parity checks).

Validation is unchanged: anything the fast path does not handle cleanly (not a JPEG, over the
limits, corrupt, truncated) goes through :func:`~tagtrain.media.decode_image`, which accepts it
or raises :class:`~tagtrain.errors.InvalidImage` naming the file.
"""

from __future__ import annotations

import io
import warnings

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageOps

from tagtrain.media import ImageLimits, decode_image, model_input, to_rgb

DRAFT_FORMATS = ("JPEG", "MPO")


def decode_for_model(
    data: bytes, name: str, *, size: int, limits: ImageLimits, draft: bool = True
) -> NDArray[np.uint8]:
    """Image bytes -> uint8 ``(size, size, 3)`` RGB, the model's ``image`` input for one picture."""
    picture = _draft_decode(data, size, limits) if draft else None
    if picture is None:
        _info, picture = decode_image(data, name, limits)
    return model_input(picture, size)


def _draft_decode(data: bytes, size: int, limits: ImageLimits) -> Image.Image | None:
    """The oriented RGB picture at reduced scale, or None to take the validating full path."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
        width, height = img.size
        if (
            img.format not in DRAFT_FORMATS
            or width * height > limits.max_pixels
            or max(width, height) > limits.max_side
            or min(width, height) < 2 * size  # no reduction possible: the full path is exact
        ):
            return None
        img.draft("RGB", (size, size))
        img.load()
        ImageOps.exif_transpose(img, in_place=True)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        return None
    return to_rgb(img)
