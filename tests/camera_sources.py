"""Camera sources made from the real photos: an image folder and a video file (OpenCV's
VideoWriter, Motion-JPEG in AVI: the codec every OpenCV build can write and read back)."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from tests.conftest import trashnet_photos

VIDEO_SIZE = (320, 240)


def image_folder(dest: Path, n: int, *, photos: list[Path] | None = None) -> Path:
    """A folder camera showing ``n`` photos (or these ``photos``), named ``000_<class>.jpg``..."""
    dest.mkdir(parents=True, exist_ok=True)
    for i, photo in enumerate(trashnet_photos(n) if photos is None else photos):
        shutil.copyfile(photo, dest / f"{i:03d}_{photo.parent.name}.jpg")
    return dest


def video_file(dest: Path, n: int, *, fps: float = 30.0, repeat: int = 3) -> Path:
    """``n`` photos, each shown for ``repeat`` frames, as ``dest`` (an .avi)."""
    writer = cv2.VideoWriter(str(dest), cv2.VideoWriter.fourcc(*"MJPG"), fps, VIDEO_SIZE)
    assert writer.isOpened(), "OpenCV cannot write an MJPG video here"
    for photo in trashnet_photos(n):
        rgb = np.asarray(Image.open(photo).convert("RGB").resize(VIDEO_SIZE))
        for _ in range(repeat):
            writer.write(np.ascontiguousarray(rgb[:, :, ::-1]))
    writer.release()
    return dest
