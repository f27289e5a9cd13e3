"""Validate image bytes at the boundary and turn them into oriented RGB.

An image is accepted only after a full decode: a file that is not an image, is empty, corrupt or
truncated, declares more pixels than the bomb limit, or is wider/taller than the side limit is
rejected with :class:`~tagtrain.errors.InvalidImage` naming the file. Unusual but valid encodings
(CMYK, 16-bit, palette, alpha, grayscale, EXIF-rotated, animated) are accepted and converted for
everything derived from them; the original bytes are never changed.
"""

from __future__ import annotations

import io
import math
import warnings
from dataclasses import dataclass

from PIL import Image, ImageOps, UnidentifiedImageError

from tagtrain.errors import InvalidImage

#: Formats we store. Pillow reads more (e.g. EPS, ICO) but they are not photos a camera produces.
ACCEPTED_FORMATS = {
    "JPEG": "image/jpeg",
    "MPO": "image/jpeg",  # phone JPEGs with a second (depth/preview) frame
    "PNG": "image/png",
    "WEBP": "image/webp",
    "GIF": "image/gif",
    "BMP": "image/bmp",
    "TIFF": "image/tiff",
}


@dataclass(frozen=True)
class ImageLimits:
    max_pixels: int = 100_000_000
    max_side: int = 20_000


@dataclass(frozen=True)
class ImageInfo:
    """What we record of an accepted image. ``width``/``height`` are after EXIF orientation."""

    width: int
    height: int
    format: str
    mime: str


def decode_image(
    data: bytes, name: str, limits: ImageLimits, *, draft_box: int | None = None
) -> tuple[ImageInfo, Image.Image]:
    """Fully decode ``data``; return its info and the oriented RGB picture, or raise InvalidImage.

    With ``draft_box``, a JPEG is decoded at the smallest DCT scale (1/2, 1/4, 1/8) that still
    covers a ``draft_box`` square fit: libjpeg reads and entropy-decodes every coefficient of the
    file, so corrupt and truncated data fail exactly as in a full decode, but the inverse transform
    runs at the lower resolution. ``ImageInfo`` always reports the full size.
    """
    if not data:
        raise InvalidImage(name, "the file is empty (0 bytes)")
    img = _open_checked(data, name, limits)
    fmt = img.format or ""
    if fmt not in ACCEPTED_FORMATS:
        raise InvalidImage(
            name, f"{fmt or 'this'} format is not accepted; use JPEG, PNG, WebP, GIF, BMP or TIFF"
        )
    width, height = img.size
    if draft_box and fmt in ("JPEG", "MPO"):
        scale = min(1.0, draft_box / max(width, height))
        img.draft("RGB", (math.ceil(width * scale), math.ceil(height * scale)))
    try:
        img.load()
    except (OSError, SyntaxError, ValueError) as exc:
        reason = (
            "the file is truncated" if "truncated" in str(exc) else f"corrupt image data ({exc})"
        )
        raise InvalidImage(name, reason) from exc
    oriented = ImageOps.exif_transpose(img)
    if oriented.size != img.size:  # rotated by a quarter turn
        width, height = height, width
    return ImageInfo(width, height, fmt, ACCEPTED_FORMATS[fmt]), to_rgb(oriented)


def _open_checked(data: bytes, name: str, limits: ImageLimits) -> Image.Image:
    """Open (header only) and check the declared size before any pixel is decoded."""
    try:
        with warnings.catch_warnings():
            # Pillow warns from ~89 Mpx on, below our own (configurable) limit checked below; its
            # hard error (twice that) still stops a header that declares an absurd size.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as exc:
        raise InvalidImage(name, f"decompression bomb refused ({exc})") from exc
    except UnidentifiedImageError as exc:
        raise InvalidImage(name, "not an image (the bytes are no known image format)") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise InvalidImage(name, f"corrupt image header ({exc})") from exc
    width, height = img.size
    if width <= 0 or height <= 0:
        raise InvalidImage(name, f"declares an empty size {width}x{height}")
    if width * height > limits.max_pixels:
        raise InvalidImage(
            name,
            f"decompression bomb refused: {width}x{height} is over the "
            f"{limits.max_pixels:,}-pixel limit",
        )
    if max(width, height) > limits.max_side:
        raise InvalidImage(name, f"{width}x{height} is over the {limits.max_side}-pixel side limit")
    return img


def to_rgb(img: Image.Image) -> Image.Image:
    """Convert any Pillow mode to 8-bit RGB; transparency is flattened onto white."""
    if img.mode == "RGB":
        return img
    if img.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        return _high_depth_to_rgb(img)
    if img.mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")


def _high_depth_to_rgb(img: Image.Image) -> Image.Image:
    """16-bit and float grayscale: scale to 8 bits (Pillow's own convert would clip to white).

    ``I;16*`` samples are 16-bit by definition, so a dark 16-bit picture stays dark; for 32-bit
    ``I`` (which older Pillow also gives for 16-bit PNGs) the range is guessed from the values."""
    import numpy as np  # noqa: PLC0415 (a rare path: keeps numpy out of every import's start-up)

    arr = np.asarray(img, dtype=np.float64)
    if img.mode == "F":
        scale = 1.0
    elif img.mode.startswith("I;16"):
        scale = 257.0
    else:
        scale = 257.0 if arr.max(initial=0) > 255 else 1.0
    eight = np.clip(arr / scale, 0, 255).astype(np.uint8)
    return Image.fromarray(eight, mode="L").convert("RGB")
