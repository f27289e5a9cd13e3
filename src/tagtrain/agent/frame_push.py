"""Live view through the server: while the server says someone watches (``live_view`` in the
config), a background thread sends each camera's newest frame, annotated as on the local stream,
about :data:`PUSH_FPS` times a second, and only when the camera has a new frame. Nothing is
encoded or sent while nobody watches.

It runs beside the camera loops and sync, never in their way: it reads the frames the loops
leave, and a failure to send (server away, a refusal) is logged once per outage, not per frame,
with a short backoff, then forgotten; the next frame is simply newer.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime

from tagtrain.agent.live_frames import LiveFrames
from tagtrain.errors import TagtrainError

log = logging.getLogger("tagtrain.agent")

PUSH_FPS = 2.0  # enough to see what the model sees; light on the uplink
MAX_BACKOFF_S = 5.0

#: Sends one annotated JPEG of a camera: :meth:`~.server_link.ServerLink.post_frame`.
PostFrame = Callable[[str, bytes], None]


class FramePush:
    def __init__(self, live: LiveFrames, post: PostFrame, *, fps: float = PUSH_FPS) -> None:
        self.live_frames = live
        self._post = post
        self._period = 1.0 / fps
        self._live = threading.Event()
        self._stop = threading.Event()
        self._sent: dict[str, datetime] = {}  # camera -> time of the frame sent last
        self._failing: type[TagtrainError] | None = None
        self._thread: threading.Thread | None = None
        self.frames_sent = 0

    @property
    def live(self) -> bool:
        return self._live.is_set()

    @live.setter
    def live(self, on: bool) -> None:
        if on and not self._live.is_set():
            log.info("someone watches this machine through the server: sending live frames")
            self._sent.clear()  # the server may have restarted since: send every camera again
        elif not on and self._live.is_set():
            log.info("nobody watches through the server now: live frames stopped")
        if on:
            self._live.set()
        else:
            self._live.clear()

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="tagtrain-live-push", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10) -> None:
        self._stop.set()
        self._live.set()  # wakes a thread waiting for someone to watch
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self._live.clear()

    def push_once(self) -> int:
        """Send the new frame of every camera that has one; how many were sent. Raises the
        error that stopped it (the cameras after it wait for the next round)."""
        sent = 0
        for camera in self.live_frames.cameras():
            latest = self.live_frames.latest(camera)
            if latest is None or self._sent.get(camera) == latest[0]:
                continue
            self._post(camera, latest[1])
            self._sent[camera] = latest[0]
            sent += 1
        self.frames_sent += sent
        return sent

    def _run(self) -> None:
        backoff = self._period
        while not self._stop.is_set():
            self._live.wait()
            if self._stop.is_set():
                break
            started = time.monotonic()
            try:
                sent = self.push_once()
            except TagtrainError as exc:
                self._failed(exc)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_S)
                continue
            except Exception:  # a bug must not end the live view for the agent's lifetime
                log.exception("sending live frames failed unexpectedly; retrying")
                self._stop.wait(MAX_BACKOFF_S)
                continue
            if sent:
                self._recovered()
            backoff = self._period
            self._stop.wait(max(0.0, self._period - (time.monotonic() - started)))

    def _failed(self, exc: TagtrainError) -> None:
        """One line per outage (again only if the kind of failure changes), none per frame."""
        if type(exc) is self._failing:
            return
        self._failing = type(exc)
        log.warning("cannot send live frames to the server: %s", exc.message)

    def _recovered(self) -> None:
        if self._failing is not None:
            log.info("live frames reach the server again")
            self._failing = None
