"""The live view of a camera: MJPEG (``multipart/x-mixed-replace``), each part the newest frame
with its classifications drawn on (:mod:`.live_frames`). Frames are encoded only while someone
watches, once per new frame however many watch, at most :data:`STREAM_FPS` a second, so an
unwatched stream costs nothing and a watched one never slows the camera loop (encoding runs in a
worker thread of the viewer's task)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator

from tagtrain.agent.live_frames import LiveFrames

STREAM_FPS = 15.0
BOUNDARY = "tagtrainframe"
MEDIA_TYPE = f"multipart/x-mixed-replace; boundary={BOUNDARY}"


async def mjpeg(live: LiveFrames, camera: str, closing: threading.Event) -> AsyncIterator[bytes]:
    """The parts of the stream until ``closing`` is set (the server stops it when the viewer
    goes)."""
    shown_at = None
    while not closing.is_set():
        at = live.frame_at(camera)
        if at is not None and at != shown_at:  # a worker thread only for a new frame
            latest = await asyncio.to_thread(live.latest, camera)
            if latest is not None:
                shown_at, jpeg = latest
                yield _part(jpeg)
        await asyncio.sleep(1.0 / STREAM_FPS)


def _part(jpeg: bytes) -> bytes:
    head = f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n"
    return head.encode("ascii") + jpeg + b"\r\n"
