"""The live view's pictures: each camera's newest frame as a JPEG with its classifications drawn
on, encoded once per frame however many watch. The local stream's viewers and the relay to the
server (:mod:`.frame_push`) read the same one, so a second viewer costs no encoding."""

from __future__ import annotations

import threading
from datetime import datetime

import numpy as np
from PIL import Image, ImageDraw

from tagtrain.agent.services import Frame, Services, encode_jpeg
from tagtrain.errors import TagtrainError
from tagtrain.runtime import Classification


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


class LiveFrames:
    """The annotated JPEG of each camera's newest frame of ``services``, kept until the camera
    has a newer one."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self._guard = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}
        self._last: dict[str, tuple[datetime, bytes]] = {}
        self.encoded = 0  # how many frames were encoded (the tests count sharing by it)

    def cameras(self) -> list[str]:
        return self.services.frames.names()

    def frame_at(self, camera: str) -> datetime | None:
        """When ``camera``'s newest frame was taken (None while it has none): cheap, so a
        viewer can poll it and ask :meth:`latest` only for a new frame."""
        try:
            return self.services.frames.latest(camera).at
        except TagtrainError:
            return None

    def latest(self, camera: str) -> tuple[datetime, bytes] | None:
        """(time of the frame, annotated JPEG) of ``camera``'s newest frame; None while it has
        none (no frame yet, or the camera went with a new config)."""
        try:
            frame = self.services.frames.latest(camera)
        except TagtrainError:
            return None
        with self._lock_of(camera):  # one encoding per frame, while the others wait for it
            cached = self._last.get(camera)
            if cached is None or cached[0] != frame.at:
                shown = self.services.floor(frame.classifications, self.services.vision.n)
                cached = (frame.at, annotate(frame, shown))
                self._last[camera] = cached
                self.encoded += 1
            return cached

    def _lock_of(self, camera: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(camera, threading.Lock())
