"""Thumbnails on demand: they are derived (and written without fsync), so one that is missing,
e.g. after a power cut, is made again from the original the first time it is asked for."""

from __future__ import annotations

from tagtrain.errors import NotFound
from tagtrain.media import ImageLimits, decode_image, make_thumbnail
from tagtrain.store import Store


def thumbnail_bytes(store: Store, sha256: str, size: int) -> bytes:
    try:
        return store.thumbnails.get(sha256)
    except NotFound:
        original = store.originals.get(sha256)  # NotFound here is a real loss: let it show
        _info, rgb = decode_image(original, sha256, ImageLimits(), draft_box=size)
        data = make_thumbnail(rgb, size)
        store.thumbnails.put(sha256, data)
        return data
