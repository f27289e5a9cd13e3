"""Camera sources: an OpenCV device index, an RTSP/HTTP stream, a video file, or an image folder.

Every camera hands out uint8 RGB ``(H, W, 3)`` frames or raises :class:`CameraFault` with a
sentence a person can act on; the camera loop logs it, keeps its last good frame and tries
again. OpenCV is imported only for the sources that need it (``tagtrain[agent]``), so a machine
with an image-folder test camera needs nothing beyond the base install.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from tagtrain.errors import BadInput, InvalidImage
from tagtrain.machine_config import CameraConfig
from tagtrain.media import ImageLimits, decode_image

log = logging.getLogger("tagtrain.agent")

FOLDER_FPS = 10.0
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"}
MAX_FRAME_SIDE = 8192


class CameraFault(Exception):
    """A camera that could not give a frame now (gone, unreadable, garbage)."""


class Camera(Protocol):
    name: str
    #: Frames per second the source runs at by itself (a video file's rate), or None.
    natural_fps: float | None

    def read(self) -> NDArray[np.uint8]: ...

    def close(self) -> None: ...


def open_camera(config: CameraConfig) -> Camera:
    """The camera a config names; BadInput when the source cannot be a camera at all."""
    source = config.source
    if isinstance(source, str) and "://" not in source:
        path = Path(source)
        if path.is_dir():
            return FolderCamera(config.name, path)
        if not path.is_file():
            raise BadInput(
                f"camera {config.name!r}: {source} is neither a folder of images, a video "
                "file, a stream URL nor a device index"
            )
    return OpenCVCamera(config.name, source)


class FolderCamera:
    """Cycles through the images of a folder, in name order: a test camera. Files that are not
    valid images are skipped (and named in the log once); an empty folder is a fault."""

    def __init__(self, name: str, folder: Path, limits: ImageLimits | None = None) -> None:
        self.name = name
        self.folder = folder
        self.natural_fps: float | None = FOLDER_FPS
        self._limits = limits or ImageLimits()
        self._files: list[Path] = []
        self._next = 0
        self._bad: set[Path] = set()

    def read(self) -> NDArray[np.uint8]:
        for _ in range(len(self._files) + 1):  # every file once, plus a fresh listing
            if self._next >= len(self._files):
                self._files = self._list()  # picks up files added or removed meanwhile
                self._next = 0
                if not self._files:
                    break
            path = self._files[self._next]
            self._next += 1
            frame = self._decode(path)
            if frame is not None:
                return frame
        raise CameraFault(f"camera {self.name!r}: the folder {self.folder} has no readable images")

    def _list(self) -> list[Path]:
        try:
            return sorted(p for p in self.folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        except OSError as exc:
            raise CameraFault(
                f"camera {self.name!r}: cannot read the folder {self.folder} ({exc.strerror})"
            ) from exc

    def _decode(self, path: Path) -> NDArray[np.uint8] | None:
        try:
            _info, picture = decode_image(path.read_bytes(), str(path), self._limits)
        except (InvalidImage, OSError) as exc:
            if path not in self._bad:
                self._bad.add(path)
                log.warning("camera %r skips %s: %s", self.name, path.name, exc)
            return None
        return np.asarray(picture, dtype=np.uint8)

    def close(self) -> None:
        self._files = []


class OpenCVCamera:
    """A device, stream or video file through OpenCV. A video file starts over at its end; a
    device or stream that stops is reopened on the next read (the loop spaces the retries)."""

    def __init__(self, name: str, source: int | str) -> None:
        self.name = name
        self.source = source
        self._cv2 = _import_cv2(name)
        self._capture: Any = None
        self._is_file = isinstance(source, str) and Path(source).is_file()
        self.natural_fps: float | None = None
        self._open()

    def _open(self) -> None:
        capture = self._cv2.VideoCapture(self.source)
        if not capture.isOpened():
            capture.release()
            raise CameraFault(f"camera {self.name!r}: cannot open {self.source!r}")
        self._capture = capture
        fps = float(capture.get(self._cv2.CAP_PROP_FPS) or 0.0)
        self.natural_fps = fps if self._is_file and 0 < fps <= 240 else None

    def read(self) -> NDArray[np.uint8]:
        if self._capture is None:
            self._open()
        ok, bgr = self._capture.read()
        if not ok and self._is_file:  # the end of the clip: play it again, like a live camera
            self._capture.set(self._cv2.CAP_PROP_POS_FRAMES, 0)
            ok, bgr = self._capture.read()
        if not ok:
            self.close()
            raise CameraFault(f"camera {self.name!r}: {self.source!r} stopped giving frames")
        return self._checked(bgr)

    def _checked(self, bgr: Any) -> NDArray[np.uint8]:
        frame = np.asarray(bgr)
        if (
            frame.dtype != np.uint8
            or frame.ndim != 3
            or frame.shape[2] != 3
            or min(frame.shape[:2]) < 1
            or max(frame.shape[:2]) > MAX_FRAME_SIDE
        ):
            raise CameraFault(
                f"camera {self.name!r} gave a frame that is not an 8-bit colour picture "
                f"({frame.dtype} {frame.shape})"
            )
        return np.ascontiguousarray(frame[:, :, ::-1])

    def close(self) -> None:
        if self._capture is not None:
            self._capture.release()
            self._capture = None


def _import_cv2(camera: str) -> Any:
    try:
        import cv2  # noqa: PLC0415 - optional: only device, stream and video cameras need it
    except ImportError as exc:
        raise BadInput(
            f"camera {camera!r} needs OpenCV: install tagtrain[agent] (an image folder "
            "works without it)"
        ) from exc
    return cv2


def pace(last: float, fps: float | None) -> float:
    """Sleep so frames are at least ``1 / fps`` apart; returns the new 'last' time."""
    if fps:
        wait = last + 1.0 / fps - time.monotonic()
        if wait > 0:
            time.sleep(wait)
    return time.monotonic()
