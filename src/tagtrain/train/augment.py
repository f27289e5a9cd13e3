"""Training augmentation on the decoded RGB picture, before the shared model-input resize.

Serving sees ``model_input(picture, size)``: the whole picture stretch-resized, bilinear. A training
*view* is ``model_input(augment(picture), size)``: :func:`augment` picks a random region of the
picture (random resized crop, its aspect ratio jittered around the picture's own, since serving
stretches), resizes it with the same antialiased bilinear filter straight to ``size x size``, then
flips, turns a little and jitters the colours. View 0 is always the plain picture, so the head is
trained on exactly what serving computes as well as on the augmented views.

Every view is reproducible: its random generator is seeded from the image's sha256, the view
index and :meth:`AugmentConfig.digest`, never from the training seed, so cached embeddings of a
view stay valid across trainings with the same augmentation settings.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageEnhance

from tagtrain.media import model_input

#: Bumped whenever the code below changes what a view looks like (it invalidates cached views).
AUGMENT_VERSION = 1


@dataclass(frozen=True)
class AugmentConfig:
    """What a training view may change. Ranges are (low, high); 0 turns a jitter off."""

    crop_scale: tuple[float, float] = (0.55, 1.0)  # share of the picture's area kept
    crop_ratio: tuple[float, float] = (3 / 4, 4 / 3)  # aspect jitter, relative to the picture's
    hflip: float = 0.5  # probability of a left-right flip
    vflip: float = 0.0  # probability of an upside-down flip (on for top-down cameras)
    rotate_deg: float = 10.0  # turn by up to this many degrees either way
    brightness: float = 0.2  # multiply brightness by 1 +- this
    contrast: float = 0.2
    saturation: float = 0.2
    hue: float = 0.0  # shift hue by up to this share of the colour circle (0..0.5)

    def __post_init__(self) -> None:
        lo, hi = self.crop_scale
        if not 0 < lo <= hi <= 1:
            raise ValueError(f"crop_scale must satisfy 0 < low <= high <= 1, got {self.crop_scale}")
        lo, hi = self.crop_ratio
        if not 0 < lo <= 1 <= hi:
            raise ValueError(f"crop_ratio must satisfy 0 < low <= 1 <= high, got {self.crop_ratio}")
        for name in ("hflip", "vflip"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} is a probability, got {getattr(self, name)}")
        if not 0 <= self.rotate_deg <= 45:
            raise ValueError(f"rotate_deg must be between 0 and 45, got {self.rotate_deg}")
        for name in ("brightness", "contrast", "saturation"):
            if not 0 <= getattr(self, name) < 1:
                raise ValueError(f"{name} must be in [0, 1), got {getattr(self, name)}")
        if not 0 <= self.hue <= 0.5:
            raise ValueError(f"hue must be between 0 and 0.5, got {self.hue}")

    def digest(self) -> str:
        """A short stable hash of these settings and the augmentation code's version."""
        blob = json.dumps({"v": AUGMENT_VERSION, **asdict(self)}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def view_rng(sha256: str, view: int, config: AugmentConfig) -> np.random.Generator:
    """The random generator of one view of one image (independent of the training seed)."""
    key = hashlib.sha256(f"{sha256}:{view}:{config.digest()}".encode()).digest()
    return np.random.default_rng(int.from_bytes(key[:8], "little"))


def make_view(
    picture: Image.Image, *, sha256: str, view: int, config: AugmentConfig, size: int
) -> NDArray[np.uint8]:
    """View ``view`` of a decoded RGB picture as the model input ``(size, size, 3)`` uint8.

    View 0 is the plain model input (what serving computes); views >= 1 are augmented."""
    if view == 0:
        return model_input(picture, size)
    return model_input(augment(picture, view_rng(sha256, view, config), config, size), size)


def augment(
    picture: Image.Image, rng: np.random.Generator, config: AugmentConfig, size: int
) -> Image.Image:
    """One random augmentation of an RGB picture, returned as a ``size x size`` RGB picture."""
    angle = float(rng.uniform(-config.rotate_deg, config.rotate_deg))
    box = _crop_box(picture.size, rng, config, angle)
    # Resize the region a little larger than ``size`` so that the turned result can be cut from
    # its centre without blank corners; the same filter as serving's resize, straight from source.
    grow = abs(math.cos(math.radians(angle))) + abs(math.sin(math.radians(angle)))
    big = max(size, math.ceil(size * grow))
    out = picture.resize((big, big), Image.Resampling.BILINEAR, box=box)
    if rng.random() < config.hflip:
        out = out.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    if rng.random() < config.vflip:
        out = out.transpose(Image.Transpose.FLIP_TOP_BOTTOM)
    if angle:
        out = out.rotate(angle, Image.Resampling.BILINEAR)
    if big != size:
        offset = (big - size) // 2
        out = out.crop((offset, offset, offset + size, offset + size))
    return _jitter_colours(out, rng, config)


def _crop_box(
    picture_size: tuple[int, int],
    rng: np.random.Generator,
    config: AugmentConfig,
    angle: float,
) -> tuple[float, float, float, float]:
    """A random region (left, top, right, bottom) in picture pixels, room left for the turn."""
    width, height = picture_size
    scale = rng.uniform(*config.crop_scale)
    log_lo, log_hi = math.log(config.crop_ratio[0]), math.log(config.crop_ratio[1])
    ratio = math.exp(rng.uniform(log_lo, log_hi))  # width/height relative to the picture's
    # Region of ``scale`` of the area whose aspect is the picture's times ``ratio``.
    w = width * math.sqrt(scale * ratio)
    h = height * math.sqrt(scale / ratio)
    grow = abs(math.cos(math.radians(angle))) + abs(math.sin(math.radians(angle)))
    w, h = w * grow, h * grow
    shrink = min(1.0, width / w, height / h)  # keep the grown region inside the picture
    w, h = min(width, w * shrink), min(height, h * shrink)  # min: float rounding
    left = rng.uniform(0, width - w)
    top = rng.uniform(0, height - h)
    return (left, top, left + w, top + h)


def _jitter_colours(
    picture: Image.Image, rng: np.random.Generator, config: AugmentConfig
) -> Image.Image:
    for amount, enhancer in (
        (config.brightness, ImageEnhance.Brightness),
        (config.contrast, ImageEnhance.Contrast),
        (config.saturation, ImageEnhance.Color),
    ):
        if amount:
            picture = enhancer(picture).enhance(float(rng.uniform(1 - amount, 1 + amount)))
    if config.hue:
        hsv = np.asarray(picture.convert("HSV")).copy()
        shift = round(float(rng.uniform(-config.hue, config.hue)) * 256)
        hsv[..., 0] = (hsv[..., 0].astype(np.int16) + shift).astype(np.uint8)
        picture = Image.fromarray(hsv, mode="HSV").convert("RGB")
    return picture
