"""The live view of a camera: MJPEG (``multipart/x-mixed-replace``), each part the newest frame
with its classifications drawn on. Frames are encoded only while someone watches and only when
the camera has a new one, at most :data:`STREAM_FPS` a second, so an unwatched stream costs
nothing and a watched one never slows the camera loop (encoding runs in the viewer's task)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator

import numpy as np
from PIL import Image, ImageDraw

from tagtrain.agent.services import Frame, Services, encode_jpeg
from tagtrain.errors import Unavailable
from tagtrain.runtime import Classification

STREAM_FPS = 15.0
BOUNDARY = "tagtrainframe"
MEDIA_TYPE = f"multipart/x-mixed-replace; boundary={BOUNDARY}"


def annotate(frame: Frame, shown: list[Classification]) -> bytes:
    """The frame as a JPEG with its top labels (and the model) written in its top-left corner."""
    picture = Image.fromarray(frame.rgb)
    lines = [f"{c.class_name}  {c.confidence:.2f}" for c in shown] or ["(no label)"]
    if frame.model:
        lines.append(frame.model)
    draw = ImageDraw.Draw(picture)
    size = max(12, min(picture.size) // 20)  # readable on a 240-px frame and on a 1080p one
    line_h = size + size // 5
    width = max(draw.textlength(line, font_size=size) for line in lines) + size
    draw.rectangle((0, 0, width, line_h * len(lines) + size // 2), fill=(0, 0, 0))
    for i, line in enumerate(lines):
        draw.text((size // 2, size // 4 + i * line_h), line, fill=(255, 255, 255), font_size=size)
    return encode_jpeg(np.asarray(picture))


async def mjpeg(services: Services, camera: str, closing: threading.Event) -> AsyncIterator[bytes]:
    """The parts of the stream until ``closing`` is set (the server stops it when the viewer
    goes)."""
    shown_at = None
    while not closing.is_set():
        try:
            frame = services.frames.latest(camera)
        except Unavailable:
            frame = None
        if frame is not None and frame.at != shown_at:
            shown_at = frame.at
            shown = services.floor(frame.classifications, services.vision.n)
            jpeg = await asyncio.to_thread(annotate, frame, shown)
            yield _part(jpeg)
        await asyncio.sleep(1.0 / STREAM_FPS)


def _part(jpeg: bytes) -> bytes:
    head = f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n"
    return head.encode("ascii") + jpeg + b"\r\n"
