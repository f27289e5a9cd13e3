"""The classifier behind the vision and ML-model services (numpy, Pillow, onnxruntime; no torch).

:meth:`Classifier.load` opens a model package and refuses one it cannot trust: a file missing or
changed (sha256), tensors not named and shaped as the manifest says, or outputs on the golden
inputs that differ from what training recorded (train/serve parity: fp32 within ``1e-4`` of the
torch graph's probabilities; int8 within ``0.03`` of its own recorded ones, since int8 kernels
round differently across CPU families). Then it classifies: image bytes, camera frames (arrays of
any size) or ready ``(N, H, W, 3)`` batches.

Shapes and names follow the glossary: ``probs`` is float32 ``(N, K)`` in label order. One session
is made per classifier and reused (onnxruntime sessions are thread-safe), with ``threads``
intra-op threads (default: the CPUs this process may use, at most 4, which is where a single
EfficientNet-Lite0 stops getting faster). Idle pool threads block instead of spinning: the
runtime shares its machine with the web server, the training worker or the agent's cameras, and
measured on 2 busy cores a spinning pool of 2 took 18-22 ms (fp32) and 12-14 ms (int8) per photo
against 10.5 and 6.3 ms blocking; ``spinning=True`` is for a machine that does nothing else.

Thresholds come from the manifest and apply the same way in every view: a label is reported only
if its probability is at least its threshold (``per_label`` else ``default``); what passes is
sorted by confidence, highest first, and ``n > 0`` keeps the top ``n``.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
from numpy.typing import NDArray
from PIL import Image

from tagtrain.errors import BadInput, PackageError
from tagtrain.media import ImageLimits, model_input, to_rgb
from tagtrain.package import GOLDEN, LABELS, MANIFEST, Manifest, Package, check_io, read_package
from tagtrain.runtime.decode import decode_for_model

FP32_ATOL = 1e-4
INT8_ATOL = 0.03
MAX_DEFAULT_THREADS = 4
MAX_BATCH = 64  # images per onnxruntime call in classify_batch


@dataclass(frozen=True, slots=True)
class Classification:
    class_name: str
    confidence: float


class Classifier:
    """A loaded, verified package; build it with :meth:`load`."""

    def __init__(
        self,
        package: Package,
        session: ort.InferenceSession,
        *,
        quantized: bool,
        draft: bool,
        limits: ImageLimits,
    ) -> None:
        manifest = package.manifest
        self.package = package
        self.quantized = quantized
        self.draft = draft
        self.limits = limits
        self._session = session
        # Runs beyond what the cores can take at once only add context switches: 16 clients
        # each running a 2-thread session on 2 cores doubled p50 and p99 in the agent benchmark.
        # Decoding and resizing stay outside the gate and overlap with the runs.
        runs = max(1, available_cpus() // session.get_session_options().intra_op_num_threads)
        self._gate = threading.BoundedSemaphore(runs)
        self._input = manifest.input.name
        self._outputs = [manifest.output.name]
        self._size = manifest.input.height
        self._labels = list(manifest.labels)
        self._thresholds = np.asarray(manifest.threshold_vector(), dtype=np.float32)

    @classmethod
    def load(
        cls,
        package_dir: str | Path,
        *,
        quantized: bool = False,
        threads: int | None = None,
        draft: bool = True,
        limits: ImageLimits | None = None,
        spinning: bool = False,
    ) -> Classifier:
        """Verify and open a package folder; ``quantized`` runs ``model.int8.onnx``.

        ``threads``: intra-op threads (default: the CPUs this process may use, at most 4).
        ``draft``: decode large JPEGs at reduced scale (see :mod:`tagtrain.runtime.decode`).
        ``limits``: what an image may declare (pixels, side). ``spinning``: let idle pool threads
        spin, for a machine that does nothing else. Raises PackageError (naming the file) for any
        package that fails its checks."""
        package = read_package(package_dir)
        manifest = package.manifest
        if manifest.input.height != manifest.input.width:
            raise PackageError(
                str(package.path(MANIFEST)),
                f"input is {manifest.input.height}x{manifest.input.width}; this runtime "
                "reads square inputs only",
            )
        path = package.model_path(quantized=quantized)
        session = _open_session(path, threads, spinning)
        check_io(session, manifest, str(path))
        classifier = cls(
            package, session, quantized=quantized, draft=draft, limits=limits or ImageLimits()
        )
        classifier._check_golden()
        return classifier

    def _check_golden(self) -> None:
        golden = self.package.golden()
        want = golden.probability_int8 if self.quantized else golden.probability
        atol = INT8_ATOL if self.quantized else FP32_ATOL
        diff = float(np.abs(self.probabilities(golden.image) - want).max())
        if not diff <= atol:  # also refuses NaN
            model = self.package.model_path(quantized=self.quantized).name
            raise PackageError(
                str(self.package.path(GOLDEN)),
                f"{model} gives probabilities up to {diff:.3g} away from the golden ones "
                f"(allowed {atol:g}); training and this runtime disagree, so the package is "
                "refused",
            )

    # -- what the package says ---------------------------------------------------------------

    @property
    def manifest(self) -> Manifest:
        return self.package.manifest

    @property
    def labels(self) -> list[str]:
        return list(self._labels)

    @property
    def input_size(self) -> int:
        return self._size

    @property
    def thresholds(self) -> NDArray[np.float32]:
        """``(K,)`` thresholds in label order."""
        return self._thresholds.copy()

    # -- running -----------------------------------------------------------------------------

    def probabilities(self, batch: NDArray[np.uint8]) -> NDArray[np.float32]:
        """uint8 ``(N, S, S, 3)`` RGB, already resized -> float32 ``(N, K)`` probabilities."""
        batch = self._checked_batch(batch)
        if batch.shape[0] == 0:
            return np.zeros((0, len(self._labels)), dtype=np.float32)
        with self._gate:
            out = self._session.run(self._outputs, {self._input: batch})[0]
        return np.asarray(out, dtype=np.float32)

    def classify_bytes(self, data: bytes, n: int, *, name: str = "image") -> list[Classification]:
        """Classify one encoded image (JPEG, PNG, WebP...); ``name`` appears in InvalidImage."""
        pixels = decode_for_model(data, name, size=self._size, limits=self.limits, draft=self.draft)
        return self.top(self.probabilities(pixels[np.newaxis])[0], n)

    def classify_batch(
        self, images: Sequence[bytes], n: int, *, names: Sequence[str] | None = None
    ) -> list[list[Classification]]:
        """Classify several encoded images, one onnxruntime call per :data:`MAX_BATCH`."""
        names = names or [f"image {i + 1}" for i in range(len(images))]
        if len(names) != len(images):
            raise BadInput(f"got {len(images)} images but {len(names)} names")
        results: list[list[Classification]] = []
        for start in range(0, len(images), MAX_BATCH):
            chunk = range(start, min(start + MAX_BATCH, len(images)))
            batch = np.stack(
                [
                    decode_for_model(
                        images[i], names[i], size=self._size, limits=self.limits, draft=self.draft
                    )
                    for i in chunk
                ]
            )
            results += [self.top(row, n) for row in self.probabilities(batch)]
        return results

    def classify_array(self, rgb: NDArray[np.uint8], n: int) -> list[Classification]:
        """Classify a camera frame: uint8 ``(H, W, 3)`` RGB of any size."""
        return self.top(self.frame_probabilities(rgb), n)

    def frame_probabilities(self, rgb: NDArray[np.uint8]) -> NDArray[np.float32]:
        """A camera frame (uint8 ``(H, W, 3)`` RGB, any size) -> its ``(K,)`` probabilities."""
        rgb = np.asarray(rgb)
        if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3 or 0 in rgb.shape:
            raise BadInput(
                f"a frame must be uint8 RGB (height, width, 3), got {rgb.dtype} {rgb.shape}"
            )
        if rgb.shape[:2] == (self._size, self._size):
            pixels = rgb
        else:
            pixels = model_input(Image.fromarray(rgb), self._size)
        probs: NDArray[np.float32] = self.probabilities(pixels[np.newaxis])[0]
        return probs

    def classify_image(self, picture: Image.Image, n: int) -> list[Classification]:
        """Classify a decoded Pillow picture of any mode and size (already oriented)."""
        return self.top(self.probabilities(model_input(to_rgb(picture), self._size)[None])[0], n)

    def top(self, probs: NDArray[np.float32], n: int) -> list[Classification]:
        """One ``(K,)`` row -> the labels at or above their thresholds, highest first; the top
        ``n`` if ``n > 0``, else all of them."""
        passed = np.flatnonzero(probs >= self._thresholds)
        order = passed[np.argsort(-probs[passed], kind="stable")]
        if n > 0:
            order = order[:n]
        return [Classification(self._labels[i], float(probs[i])) for i in order]

    # -- the ML-model service ----------------------------------------------------------------

    def metadata(self) -> dict[str, Any]:
        """Viam-style ``Metadata()``: name, type, description, input and output tensor info."""
        manifest = self.manifest
        size = self._size
        kind = "int8" if self.quantized else "fp32"
        return {
            "name": manifest.name,
            "type": "onnx_cpu",
            "description": (
                f"tagtrain {manifest.task.replace('_', '-')} classifier {manifest.name} "
                f"v{manifest.version} ({manifest.backbone}, {kind}), {len(self._labels)} labels"
            ),
            "input_info": [
                {
                    "name": self._input,
                    "description": (
                        f"RGB pixels, stretch-resized (bilinear) to {size}x{size}, NHWC"
                    ),
                    "data_type": "uint8",
                    "shape": [-1, size, size, 3],
                    "associated_files": [],
                    "extra": {"layout": "NHWC", "color": "RGB", "resize": "stretch-bilinear"},
                }
            ],
            "output_info": [
                {
                    "name": self._outputs[0],
                    "description": f"{manifest.output.activation} probability per label",
                    "data_type": "float32",
                    "shape": [-1, len(self._labels)],
                    "associated_files": [
                        {
                            "name": LABELS,
                            "description": "one label per line, in output order",
                            "label_type": "LABEL_TYPE_TENSOR_AXIS",
                        }
                    ],
                    "extra": {
                        "labels": list(self._labels),
                        "activation": manifest.output.activation,
                        "thresholds": self._thresholds.tolist(),
                    },
                }
            ],
        }

    def infer(self, tensors: dict[str, NDArray[Any]]) -> dict[str, NDArray[np.float32]]:
        """Viam-style ``Infer()``: ``{"image": uint8 (N, S, S, 3)}`` -> ``{"probability": (N, K)}``."""
        if set(tensors) != {self._input}:
            raise BadInput(
                f"infer takes one tensor named {self._input!r}, got {sorted(tensors) or 'none'}"
            )
        return {self._outputs[0]: self.probabilities(np.asarray(tensors[self._input]))}

    def _checked_batch(self, batch: NDArray[Any]) -> NDArray[np.uint8]:
        want = (self._size, self._size, 3)
        if not isinstance(batch, np.ndarray) or batch.dtype != np.uint8 or batch.shape[1:] != want:
            got = f"{batch.dtype} {batch.shape}" if isinstance(batch, np.ndarray) else type(batch)
            raise BadInput(
                f"{self._input!r} must be uint8 (N, {self._size}, {self._size}, 3) RGB pixels, "
                f"got {got}"
            )
        return np.ascontiguousarray(batch)


def available_cpus() -> int:
    """CPUs this process may run on: its affinity, capped by a cgroup v2 quota if there is one."""
    try:
        count = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        count = os.cpu_count() or 1
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            count = min(count, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return max(1, count)


def session_options(threads: int | None = None, *, spinning: bool = False) -> ort.SessionOptions:
    """One sequential session, ``threads`` intra-op threads, all graph optimisations, quiet;
    idle pool threads block rather than spin unless ``spinning`` (see the module notes)."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or min(available_cpus(), MAX_DEFAULT_THREADS)
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    return options


def _open_session(path: Path, threads: int | None, spinning: bool) -> ort.InferenceSession:
    try:
        return ort.InferenceSession(
            str(path),
            session_options(threads, spinning=spinning),
            providers=["CPUExecutionProvider"],
        )
    except Exception as exc:  # onnxruntime raises its own untyped errors for bad graphs
        raise PackageError(str(path), f"onnxruntime cannot load it ({exc})") from exc
