"""Thumbnails for the data tab: small JPEGs made once at import from the oriented RGB picture."""

from __future__ import annotations

import io

from PIL import Image


def make_thumbnail(rgb: Image.Image, size: int = 256, quality: int = 80) -> bytes:
    """Return JPEG bytes of ``rgb`` shrunk to fit ``size``x``size`` (aspect kept, never enlarged)."""
    scale = size / max(rgb.size)
    # resize() returns a new picture (no copy of the input first); reducing_gap lets Pillow
    # box-reduce before resampling: near-identical, much faster.
    thumb = (
        rgb.resize(
            (max(1, round(rgb.width * scale)), max(1, round(rgb.height * scale))),
            Image.Resampling.BILINEAR,
            reducing_gap=2.0,
        )
        if scale < 1
        else rgb
    )
    out = io.BytesIO()
    thumb.save(out, format="JPEG", quality=quality)
    return out.getvalue()
