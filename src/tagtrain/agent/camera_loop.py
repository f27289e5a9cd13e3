"""One thread per camera: read a frame, classify it with the model served now, keep it as the
camera's newest frame (for the services and the live stream), and hand the frames the capture
rule wants to the capture queue. A camera fault is logged once per outage and retried with
backoff; the last good frame stays available meanwhile."""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime

import numpy as np
from numpy.typing import NDArray

from tagtrain.agent.cameras import Camera, CameraFault, open_camera, pace
from tagtrain.agent.capture_policy import CapturePolicy
from tagtrain.agent.model_slot import ModelSlot
from tagtrain.agent.services import Frame, encode_jpeg
from tagtrain.errors import NotFound, TagtrainError, Unavailable
from tagtrain.machine_config import CameraConfig, CameraStatus, RecentPrediction, scores
from tagtrain.runtime import Classification

log = logging.getLogger("tagtrain.agent")

FPS_WINDOW_S = 5.0
RECENT = 5  # predictions kept per camera for the status, at least RECENT_EVERY_S apart
RECENT_EVERY_S = 1.0
MAX_FAULT_BACKOFF_S = 10.0

#: Called with (jpeg, camera, captured_at, tags) for each frame the capture rule keeps.
OnCapture = Callable[[bytes, str, datetime, tuple[str, ...]], None]


class CameraLoop:
    def __init__(
        self,
        config: CameraConfig,
        slot: ModelSlot,
        on_capture: OnCapture | None = None,
        *,
        opener: Callable[[CameraConfig], Camera] = open_camera,
    ) -> None:
        self.config = config
        self._slot = slot
        self._on_capture = on_capture
        self._opener = opener
        self._policy = CapturePolicy(config.capture)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"camera-{config.name}", daemon=True)
        self._times: deque[float] = deque()
        self.latest: Frame | None = None
        self.recent: deque[RecentPrediction] = deque(maxlen=RECENT)
        self.error: str | None = None
        self.frames = 0

    @property
    def name(self) -> str:
        return self.config.name

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def fps(self) -> float:
        times = self._times
        if len(times) < 2:
            return 0.0
        span = times[-1] - times[0]
        return (len(times) - 1) / span if span > 0 else 0.0

    def status(self) -> CameraStatus:
        return CameraStatus(
            name=self.name, ok=self.error is None, fps=round(self.fps(), 2), error=self.error
        )

    def _run(self) -> None:
        camera: Camera | None = None
        backoff = 0.5
        last = 0.0
        while not self._stop.is_set():
            try:
                camera = camera or self._opener(self.config)
                last = pace(last, self.config.max_fps or camera.natural_fps)
                self.step(camera.read())
                backoff = 0.5
            except (CameraFault, TagtrainError) as exc:
                if camera is not None:
                    camera.close()
                    camera = None
                self._fault(str(exc))
                self._stop.wait(backoff)
                backoff = min(backoff * 2, MAX_FAULT_BACKOFF_S)
        if camera is not None:
            camera.close()

    def step(self, rgb: NDArray[np.uint8]) -> Frame:
        """Classify one frame and make it the newest; keep it if the capture rule wants it."""
        probs, labels, found, model = self._classify(rgb)
        frame = Frame(rgb=rgb, at=datetime.now(UTC), classifications=found, model=model)
        self.latest = frame
        self.frames += 1
        self._remember(frame)
        self._tick()
        if self.error is not None:
            log.info("camera %r is giving frames again", self.name)
            self.error = None
        if self._on_capture and self._policy.wants(probs, labels, time.monotonic()):
            rule = self.config.capture
            self._on_capture(encode_jpeg(rgb), self.name, frame.at, tuple(rule.tags))
        return frame

    def _classify(
        self, rgb: NDArray[np.uint8]
    ) -> tuple[NDArray[np.float32] | None, list[str], list[Classification], str | None]:
        try:
            classifier = self._slot.get()
        except Unavailable:
            return None, [], [], None
        probs = classifier.frame_probabilities(rgb)
        model = f"{classifier.manifest.name}@{classifier.manifest.version}"
        return probs, classifier.labels, classifier.top(probs, 0), model

    def _remember(self, frame: Frame) -> None:
        last = self.recent[-1].at if self.recent else None
        if last is None or (frame.at - last).total_seconds() >= RECENT_EVERY_S:
            top = [scores(c) for c in frame.classifications[:3]]
            self.recent.append(RecentPrediction(camera=self.name, at=frame.at, classifications=top))

    def _tick(self) -> None:
        now = time.monotonic()
        self._times.append(now)
        while self._times and now - self._times[0] > FPS_WINDOW_S:
            self._times.popleft()

    def _fault(self, message: str) -> None:
        if message != self.error:
            log.warning("%s; retrying", message)
        self.error = message
        self._times.clear()


class CameraHub:
    """The machine's camera loops, as the services see them (:class:`~.services.Frames`)."""

    def __init__(self, loops: list[CameraLoop]) -> None:
        self.loops = {loop.name: loop for loop in loops}

    def names(self) -> list[str]:
        return list(self.loops)

    def loop(self, camera: str) -> CameraLoop:
        loop = self.loops.get(camera)
        if loop is None:
            known = ", ".join(self.loops) or "none"
            raise NotFound(f"this machine has no camera named {camera!r} (it has: {known})")
        return loop

    def latest(self, camera: str) -> Frame:
        loop = self.loop(camera)
        frame = loop.latest
        if frame is None:
            why = f": {loop.error}" if loop.error else "; try again in a moment"
            raise Unavailable(f"camera {camera!r} has no frame yet{why}")
        return frame

    def start(self) -> None:
        for loop in self.loops.values():
            loop.start()

    def stop(self) -> None:
        for loop in self.loops.values():
            loop.stop(timeout=0)  # signal every loop first, then wait for each
        for loop in self.loops.values():
            loop.stop()

    def statuses(self) -> list[CameraStatus]:
        return [loop.status() for loop in self.loops.values()]

    def recent(self, limit: int = 20) -> list[RecentPrediction]:
        """The newest predictions of every camera, newest first."""
        found = [r for loop in self.loops.values() for r in loop.recent]
        return sorted(found, key=lambda r: r.at, reverse=True)[:limit]
