"""Thumbnails for the data tab: small JPEGs made once at import from the oriented RGB picture."""

from __future__ import annotations

import io

from PIL import Image


def make_thumbnail(rgb: Image.Image, size: int = 256, quality: int = 80) -> bytes:
    """Return JPEG bytes of ``rgb`` shrunk to fit ``size``x``size`` (aspect kept, never enlarged)."""
    thumb = rgb.copy() if max(rgb.size) <= size else _shrink(rgb, size)
    out = io.BytesIO()
    thumb.save(out, format="JPEG", quality=quality, optimize=False)
    return out.getvalue()


def _shrink(rgb: Image.Image, size: int) -> Image.Image:
    thumb = rgb.copy()
    # reducing_gap lets Pillow box-reduce first and then resample: near-identical, much faster.
    thumb.thumbnail((size, size), Image.Resampling.BILINEAR, reducing_gap=2.0)
    return thumb
