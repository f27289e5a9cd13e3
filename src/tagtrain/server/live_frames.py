"""The live-view relay: the newest annotated frame of each machine's cameras, kept in memory.

A person's browser cannot always reach a machine's own HTTP port (the agent listens on loopback,
sits behind NAT or on another network), but the agent can always reach the server. So while
someone watches a machine through the server (any relay request for it in the last
:data:`WATCH_WINDOW_S` seconds), the agent config says ``live_view`` and the agent pushes frames
here; the viewers read them back as a JPEG or an MJPEG stream.

Frames are ephemeral: only the newest per (machine, camera) is kept, in this process's memory;
nothing goes to the database or the disk, and a restart forgets them.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Request

from tagtrain.store.tables import utcnow

#: How long a relay request keeps a machine "watched"; read at call time so tests can shorten it.
WATCH_WINDOW_S = 15.0
#: Cameras kept per machine (the config allows 16); the oldest goes first, so a misbehaving
#: agent sending made-up camera names cannot grow the server's memory.
MAX_CAMERAS = 16
#: How often a stream looks for a newer frame; the agent pushes about 2 a second.
STREAM_CHECK_S = 0.1
BOUNDARY = "tagtrainframe"
MEDIA_TYPE = f"multipart/x-mixed-replace; boundary={BOUNDARY}"
_NEXT_PART = f"\r\n--{BOUNDARY}\r\nContent-Type: image/jpeg\r\n\r\n".encode("ascii")


@dataclass(frozen=True, slots=True)
class LiveFrame:
    jpeg: bytes
    at: datetime  # when the server received it
    seq: int  # grows with every frame put, so a stream can tell a new one from the last


class LiveFrames:
    """Thread-safe: frames arrive in request threads, streams read them on the event loop."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._frames: dict[int, dict[str, LiveFrame]] = {}
        self._watched: dict[int, float] = {}
        self._seq = 0
        self._closing = threading.Event()

    def close(self) -> None:
        """End every open stream: the server is stopping, and it waits for open responses."""
        self._closing.set()

    def put(self, machine_id: int, camera: str, jpeg: bytes) -> LiveFrame:
        with self._lock:
            self._seq += 1
            frame = LiveFrame(jpeg=jpeg, at=utcnow(), seq=self._seq)
            cameras = self._frames.setdefault(machine_id, {})
            cameras.pop(camera, None)  # re-insert: dict order is then oldest-updated first
            cameras[camera] = frame
            while len(cameras) > MAX_CAMERAS:
                del cameras[next(iter(cameras))]
            return frame

    def latest(self, machine_id: int, camera: str) -> LiveFrame | None:
        with self._lock:
            return self._frames.get(machine_id, {}).get(camera)

    def watch(self, machine_id: int) -> None:
        """Someone looks at this machine's live view now."""
        with self._lock:
            self._watched[machine_id] = time.monotonic()

    def watched(self, machine_id: int) -> bool:
        with self._lock:
            last = self._watched.get(machine_id)
        return last is not None and time.monotonic() - last < WATCH_WINDOW_S

    def forget(self, machine_id: int) -> None:
        """Drop a machine's frames (it was deleted)."""
        with self._lock:
            self._frames.pop(machine_id, None)
            self._watched.pop(machine_id, None)

    async def stream(
        self, machine_id: int, camera: str, gone: Callable[[], Awaitable[bool]]
    ) -> AsyncIterator[bytes]:
        """MJPEG parts: the newest frame now (if any), then each newer one as it arrives, until
        ``gone()`` says the viewer left (or :meth:`close`). The machine stays watched for as long as the stream is
        open, so the agent keeps pushing.

        Each frame is followed at once by the next part's boundary and headers (so the parts carry
        no Content-Length, which MJPEG readers do not need): a browser shows a part only when the
        next one begins, and at 2 frames a second waiting for the next frame would put the picture
        half a second behind, and never show a camera's last frame at all."""
        shown = 0
        yield _NEXT_PART[2:]  # the first part's boundary has no line break before it
        while not self._closing.is_set() and not await gone():
            self.watch(machine_id)
            frame = self.latest(machine_id, camera)
            if frame is not None and frame.seq != shown:
                shown = frame.seq
                yield frame.jpeg + _NEXT_PART
            await asyncio.sleep(STREAM_CHECK_S)


def get_live_frames(request: Request) -> LiveFrames:
    frames: LiveFrames = request.app.state.live_frames
    return frames


LiveFramesDep = Annotated[LiveFrames, Depends(get_live_frames)]
