"""Real models and real photos for the package and runtime tests, built once per test process.

Two models, both mapping uint8 ``(N, S, S, 3)`` RGB to probabilities like a trained tagtrain model:

- :class:`TinyNet` (``S = 32``): two seeded random convolutions and a linear head; its package
  builds in about a second, for the fast tests.
- :class:`Lite0Classifier` (``S = 224``): our pretrained EfficientNet-Lite0 features and a linear
  head. The head is not trained by a loop but set in closed form from the calibration photos: each
  label's weight row is the mean feature vector of its photos (a nearest-class-mean classifier).
  A purely random head is no model anyone ships: it weighs all 1,280 features alike, tiny noisy
  ones included, so int8 flips it on ~3% of photos and the writer rightly refuses it.
"""

from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path
from typing import Literal

import numpy as np
import pytest
import torch
from numpy.typing import NDArray
from torch import nn

from tagtrain.media import ImageLimits, decode_image, model_input
from tagtrain.package import MANIFEST, Manifest
from tagtrain.package.write import write_package
from tagtrain.train.backbone import UInt8Normalize, get_backbone
from tests.conftest import TRASHNET, trashnet_photos

Kind = Literal["single_label", "multi_label"]
CLASSES = sorted(p.name for p in TRASHNET.iterdir() if p.is_dir())  # the six folders, in order
TINY = 32
LITE0 = 224


def photo_bytes(n: int) -> list[bytes]:
    return [p.read_bytes() for p in trashnet_photos(n)]


@functools.cache
def photo_inputs(n: int, size: int) -> NDArray[np.uint8]:
    """``n`` trashnet photos (round-robin over the classes) through the shared preprocessing."""
    batch = [
        model_input(decode_image(p.read_bytes(), p.name, ImageLimits())[1], size)
        for p in trashnet_photos(n)
    ]
    out = np.stack(batch)
    out.flags.writeable = False
    return out


def _activate(logits: torch.Tensor, kind: Kind) -> torch.Tensor:
    return logits.softmax(-1) if kind == "single_label" else logits.sigmoid()


class TinyNet(nn.Module):
    def __init__(self, k: int, kind: Kind, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.kind = kind
        self.normalize = UInt8Normalize((127.0,) * 3, (128.0,) * 3)
        self.conv1 = nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.conv2 = nn.Conv2d(8, 16, 3, stride=2, padding=1)
        self.head = nn.Linear(16, k)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.conv1(self.normalize(image)))
        x = torch.relu(self.conv2(x)).mean(dim=(2, 3))
        return _activate(self.head(x) * 4.0, self.kind)


class Lite0Classifier(nn.Module):
    def __init__(self, photos: NDArray[np.uint8], k: int, kind: Kind) -> None:
        super().__init__()
        spec = get_backbone()
        self.kind = kind
        self.normalize = spec.input_module()
        self.backbone = spec.create()
        self.head = nn.Linear(spec.feature_dim, k)
        with torch.inference_mode():
            feats = self.backbone.forward_features(self.normalize(torch.tensor(photos)))
            owner = torch.arange(len(photos)) % k  # trashnet_photos is round-robin
            means = torch.stack([feats[owner == c].mean(0) for c in range(k)])
            logits = feats @ means.T - 0.5 * (means * means).sum(1)
            scale = 3.0 / float(logits.std(1).mean())  # logits a few units apart, as trained ones
            self.head.weight.copy_(means * scale)
            self.head.bias.copy_(-0.5 * (means * means).sum(1) * scale)
        self.eval()

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        features = self.backbone.forward_features(self.normalize(image))
        return _activate(self.head(features), self.kind)


def write_tiny(
    out: Path, kind: Kind = "single_label", *, thresholds: object = None, **overrides: object
) -> Manifest:
    photos = photo_inputs(24, TINY)
    args: dict[str, object] = {
        "model": TinyNet(len(CLASSES), kind),
        "name": "tiny-trash",
        "version": 1,
        "task": kind,
        "labels": CLASSES,
        "thresholds": thresholds,
        "metrics": {"accuracy": 0.5},
        "dataset": {"name": "trashnet", "snapshot": 7, "counts": {"train": 24, "test": 24}},
        "backbone": "tiny-test-net",
        "input_size": TINY,
        "calibration": photos[:12],
        "golden": photos[12:16],
        "test_inputs": photos[12:],
    }
    args.update(overrides)
    return write_package(out, **args)  # type: ignore[arg-type]


N_CALIBRATION = 24  # 4 per class
N_CHECK = 120  # 20 per class, other photos: one flip in 100 is allowed


def write_lite0(out: Path, kind: Kind = "single_label") -> Manifest:
    photos = photo_inputs(N_CALIBRATION + N_CHECK, LITE0)
    calibration, check = photos[:N_CALIBRATION], photos[N_CALIBRATION:]
    thresholds = {"default": 0.5, "per_label": {"glass": 0.4}} if kind == "multi_label" else None
    return write_package(
        out,
        model=Lite0Classifier(photos, len(CLASSES), kind),
        name="trash-lite0",
        version=3,
        task=kind,
        labels=CLASSES,
        thresholds=thresholds,
        metrics={"accuracy": 0.9},
        dataset={
            "name": "trashnet",
            "snapshot": 1,
            "counts": {"train": N_CALIBRATION, "test": N_CHECK},
        },
        backbone="efficientnet-lite0",
        input_size=LITE0,
        calibration=calibration,
        golden=check[:6],
        test_inputs=check,
    )


_built: dict[tuple[str, Kind], Path] = {}


def built(which: Literal["tiny", "lite0"], kind: Kind, factory: pytest.TempPathFactory) -> Path:
    """A package folder, written once per test process and shared (tests copy before editing)."""
    key = (which, kind)
    if key not in _built:
        out = factory.mktemp(f"{which}-{kind}") / "package"
        (write_tiny if which == "tiny" else write_lite0)(out, kind)
        _built[key] = out
    return _built[key]


def rehash(package: Path, name: str) -> None:
    """Record ``name``'s new sha256 in the manifest, as a faulty exporter (not a tamperer) would."""
    data = json.loads((package / MANIFEST).read_text())
    data["sha256"][name] = hashlib.sha256((package / name).read_bytes()).hexdigest()
    (package / MANIFEST).write_text(json.dumps(data))
