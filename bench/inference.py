"""Inference latency through the runtime: one JPEG -> classifications, fp32 and int8.

The package is built like the tests build theirs: our pretrained EfficientNet-Lite0 with a
nearest-class-mean head over 24 trashnet photos, written by ``write_package`` (export, int8,
parity checks). The JPEG is a trashnet photo as a VGA camera frame (640x480, quality 90), so the
runtime's draft decode (DCT scaling to 320x240) is part of what is timed.

Peer: a bare onnxruntime session on the same model, with the same session options (intra-op
threads, no spinning), fed the same input already decoded and resized (224x224 uint8). Two rows
per model:

- JPEG -> classifications p50, held to DESIGN.md's bar (10 ms fp32, 6 ms int8); the ratio to the
  peer shows what decoding and resizing add;
- an already-decoded frame -> classifications p50 (``classify_array``), held to within 15% of the
  peer: the overhead of the runtime itself (checks, thresholds, sorting) on the same input.

Timings interleave the paths call by call, so a neighbour's burst of load hits them alike.
"""

from __future__ import annotations

import io
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from numpy.typing import NDArray
from PIL import Image

from bench.common import latency, temp_dir, trashnet_by_class
from bench.rows import Bar, Row
from tagtrain.media import ImageLimits, decode_image, model_input
from tagtrain.package import MODEL_FP32, MODEL_INT8
from tagtrain.package.write import write_package
from tagtrain.runtime import Classifier, decode_for_model, session_options
from tagtrain.train.backbone import get_backbone

BARS_MS = {False: 10.0, True: 6.0}
OVERHEAD = 1.15  # the runtime on a decoded frame vs the bare session
CALLS = 400
WARMUP = 30
TOP_N = 3
PER_CLASS = 4  # photos per class for the head and calibration
FRAME = (640, 480)


def run() -> list[Row]:
    with temp_dir("inference") as tmp:
        start = time.perf_counter()
        build_package(tmp / "package")
        build_s = time.perf_counter() - start
        jpeg = camera_frame()
        rows = [r for quantized in (False, True) for r in measure(tmp / "package", jpeg, quantized)]
    return [*rows, Row("inference: build the package (setup)", build_s, "s")]


def photos() -> tuple[list[str], NDArray[np.uint8]]:
    """``PER_CLASS`` photos of each class, round-robin, as model inputs; and the class names."""
    by_class = trashnet_by_class()
    names = sorted(by_class)
    paths = [by_class[c][i] for i in range(PER_CLASS) for c in names]
    size = get_backbone().input_size
    batch = [
        model_input(decode_image(p.read_bytes(), p.name, ImageLimits())[1], size) for p in paths
    ]
    return names, np.stack(batch)


class NearestMean(torch.nn.Module):
    """Pretrained EfficientNet-Lite0 features, a head whose rows are the class-mean features."""

    def __init__(self, images: NDArray[np.uint8], k: int) -> None:
        super().__init__()
        spec = get_backbone()
        self.normalize = spec.input_module()
        self.backbone = spec.create()
        self.head = torch.nn.Linear(spec.feature_dim, k)
        with torch.inference_mode():
            feats = self.backbone.forward_features(self.normalize(torch.tensor(images)))
            owner = torch.arange(len(images)) % k
            means = torch.stack([feats[owner == c].mean(0) for c in range(k)])
            bias = -0.5 * (means * means).sum(1)
            scale = 3.0 / float((feats @ means.T + bias).std(1).mean())
            self.head.weight.copy_(means * scale)
            self.head.bias.copy_(bias * scale)
        self.eval()

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.head(self.backbone.forward_features(self.normalize(image)))
        return out.softmax(-1)


def build_package(out: Path) -> None:
    names, images = photos()
    write_package(
        out,
        model=NearestMean(images, len(names)),
        name="bench-trash",
        version=1,
        task="single_label",
        labels=names,
        thresholds=None,
        metrics={},
        dataset={"name": "trashnet", "counts": {"train": len(images)}},
        backbone="efficientnet-lite0",
        input_size=get_backbone().input_size,
        calibration=images,
        golden=images[:4],
    )


def camera_frame() -> bytes:
    """A trashnet photo turned landscape and resized to a 640x480 JPEG, as a camera sends."""
    source = trashnet_by_class()["glass"][0]
    with Image.open(source) as img:
        frame = img.convert("RGB").transpose(Image.Transpose.ROTATE_90).resize(FRAME)
    out = io.BytesIO()
    frame.save(out, format="JPEG", quality=90)
    return out.getvalue()


def interleaved(paths: dict[str, Callable[[], object]]) -> dict[str, list[float]]:
    """Seconds per call of each path: ``CALLS`` calls each, one path after the other in turn, so
    that a neighbour's burst of load falls on all of them alike."""
    for fn in paths.values():
        for _ in range(WARMUP):
            fn()
    samples: dict[str, list[float]] = {name: [] for name in paths}
    for _ in range(CALLS):
        for name, fn in paths.items():
            start = time.perf_counter()
            fn()
            samples[name].append(time.perf_counter() - start)
    return samples


def measure(package: Path, jpeg: bytes, quantized: bool) -> list[Row]:
    classifier = Classifier.load(package, quantized=quantized)
    threads = session_options().intra_op_num_threads
    model = package / (MODEL_INT8 if quantized else MODEL_FP32)
    bare = ort.InferenceSession(
        str(model), session_options(threads), providers=["CPUExecutionProvider"]
    )
    pixels = decode_for_model(jpeg, "frame.jpg", size=classifier.input_size, limits=ImageLimits())
    batch = pixels[np.newaxis]
    samples = interleaved(
        {
            "jpeg": lambda: classifier.classify_bytes(jpeg, TOP_N),
            "frame": lambda: classifier.classify_array(pixels, TOP_N),
            "bare": lambda: bare.run(["probability"], {"image": batch}),
            "decode": lambda: decode_for_model(
                jpeg, "frame.jpg", size=classifier.input_size, limits=ImageLimits()
            ),
        }
    )
    jpeg_ms, frame_ms, bare_ms = (latency(samples[k]) for k in ("jpeg", "frame", "bare"))
    kind = "int8" if quantized else "fp32"
    peer_is = f"bare onnxruntime session, {threads} threads, on the decoded 224x224 input"
    details = {
        "threads": threads,
        "calls": jpeg_ms.n,
        "jpeg": f"{FRAME[0]}x{FRAME[1]}, {len(jpeg):,} bytes",
        "decode_resize_p50_ms": round(statistics.median(samples["decode"]) * 1000, 3),
        "p95_ms": {"jpeg": jpeg_ms.p95_ms, "frame": frame_ms.p95_ms, "bare": bare_ms.p95_ms},
    }
    return [
        Row(
            f"inference {kind}: one {FRAME[0]}x{FRAME[1]} JPEG -> classifications p50",
            jpeg_ms.p50_ms,
            "ms",
            Bar("<=", BARS_MS[quantized]),
            bare_ms.p50_ms,
            peer_is,
            details,
        ),
        Row(
            f"inference {kind}: decoded frame -> classifications p50 (runtime overhead)",
            frame_ms.p50_ms,
            "ms",
            Bar("<=", round(OVERHEAD * bare_ms.p50_ms, 3)),
            bare_ms.p50_ms,
            peer_is,
            details,
        ),
    ]
