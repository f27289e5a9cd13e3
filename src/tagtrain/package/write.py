"""Write a model package from a trained torch model (imports torch: training code only).

:func:`write_package` exports the model, checks the export, quantises it and checks that too, then
moves the finished folder into place; any failed check raises
:class:`~tagtrain.errors.PackageError` and leaves nothing behind (the files are written into a
hidden folder beside ``out_dir`` and renamed at the end, so there is never a half-written package).

The checks, in order:

1. the torch model's outputs on the golden inputs are ``(G, K)`` probabilities (softmax rows for
   ``single_label``, values in ``[0, 1]`` for ``multi_label``);
2. ``model.onnx`` passes ``onnx.checker`` (full check) and has the package's tensors (input
   ``image`` uint8 ``[N, H, W, 3]``, output ``probability`` float32 ``[N, K]``);
3. onnxruntime's fp32 probabilities on the golden inputs are within ``1e-4`` of torch's;
4. ``model.int8.onnx``'s top-1 agrees with ``model.onnx``'s on at least 99% of the check inputs
   (``test_inputs``, the test split, else the golden ones).

Quantisation is onnxruntime's static QDQ (uint8 activations, int8 per-channel weights, MinMax
ranges from ``calibration``: training images). Three parts stay float, because measured on
EfficientNet-Lite0 and real photos each costs agreement and saves nearly no time:

- the input normalisation (uint8 -> float is exact; quantising it only adds rounding);
- everything after the last convolution's activation: pooled features, classifier and
  softmax/sigmoid. The pooled features are mostly tiny with a few large ones, so one uint8 scale
  for all of them erases most: quantising the classifier's input raised the relative error of
  the logits of a trained head from 12% to 20%;
- the first fifth of the convolutions with everything between them (the full-resolution stem
  and first stages, where the error that later layers amplify starts): keeping them float took
  that 12% to 5% and ran as fast as quantising them (int8 kernels gain little at those shapes).

What remains, ~5% relative error on the logits, is spread over the rest of the network (activation
ranges from percentiles or entropy instead of MinMax did not lower it). It flips the top-1 of a
photo whose two best classes are nearly tied: about 1 photo in 100 on trashnet. If agreement is
under the bar, the writer tries again with half the convolutions float (error ~4%); if that fails
too, the package is refused. The check reads no labels (it compares int8 with fp32 outputs), so
using the test split's images for it chooses nothing about the model the metrics describe.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import tempfile
import uuid
import warnings
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypedDict, Unpack

import numpy as np
import onnx
import onnxruntime as ort
import torch
from numpy.typing import NDArray
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quantize_static,
)
from onnxruntime.quantization.shape_inference import quant_pre_process

from tagtrain.errors import Conflict, PackageError
from tagtrain.package.graph import simplify_onnx
from tagtrain.package.manifest import (
    ACTIVATION,
    DEFAULT_THRESHOLD,
    FORMAT_VERSION,
    GOLDEN,
    INPUT_NAME,
    LABELS,
    MANIFEST,
    MODEL_FP32,
    MODEL_INT8,
    OUTPUT_NAME,
    PACKAGE_FILES,
    DatasetInfo,
    Manifest,
    Thresholds,
)
from tagtrain.package.read import check_io, parse_manifest, sha256_file

OPSET = 17
PARITY_ATOL = 1e-4  # onnxruntime fp32 vs torch, max abs difference of probabilities
MIN_AGREEMENT = 0.99  # int8 vs fp32 top-1 on the check inputs
FLOAT_CONV_SHARES = (0.2, 0.5)  # of the convolutions, input side, kept float: tried in turn
MAX_CALIBRATION = 128  # images; MinMax ranges settle long before, and each costs a forward pass
CALIBRATION_BATCH = 8
RUN_BATCH = 32

Images = NDArray[np.uint8]
Probs = NDArray[np.float32]
TASK_ALIASES = {"single": "single_label", "multi": "multi_label"}


class ManifestFields(TypedDict):
    """What the manifest says about a model; :func:`write_package` takes them as keywords."""

    name: str
    version: int
    task: str
    labels: Sequence[str]
    thresholds: Thresholds | Mapping[str, Any] | float | None
    metrics: Mapping[str, Any]
    dataset: DatasetInfo | Mapping[str, Any]
    backbone: str
    input_size: int


def write_package(
    out_dir: str | Path,
    *,
    model: torch.nn.Module,
    calibration: Images,
    golden: Images,
    test_inputs: Images | None = None,
    overwrite: bool = False,
    **fields: Unpack[ManifestFields],
) -> Manifest:
    """Export ``model`` as a checked package folder ``out_dir``; return its manifest.

    ``model`` maps uint8 ``(N, S, S, 3)`` RGB (``S = input_size``, already resized by
    :func:`tagtrain.media.model_input`) to float32 ``(N, K)`` probabilities, ``K = len(labels)``;
    normalisation and the final softmax/sigmoid are part of it. ``task`` is ``single_label`` or
    ``multi_label`` (``single``/``multi`` accepted). ``thresholds``: a :class:`Thresholds`, a
    mapping ``{"default": x, "per_label": {...}}`` or ``{label: x}``, a number (the default), or
    None (0 for single-label, 0.5 for multi-label). ``calibration``, ``golden`` and
    ``test_inputs``: uint8 ``(N, S, S, 3)``; calibration comes from training images (at most
    128 are used), golden is a few inputs the runtime re-runs on load, test_inputs (the test
    split) is where int8 must agree with fp32. ``out_dir`` must not exist or be empty, unless
    ``overwrite``. Raises PackageError when a check fails, Conflict when ``out_dir`` is taken.
    """
    out_dir = Path(out_dir)
    manifest = _manifest(fields)
    input_size = fields["input_size"]
    golden = _images(golden, "golden", input_size)
    calibration = _images(calibration, "calibration", input_size)[:MAX_CALIBRATION]
    check = golden if test_inputs is None else _images(test_inputs, "test_inputs", input_size)
    _check_target(out_dir, overwrite=overwrite)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = out_dir.parent / f".{out_dir.name}.partial-{uuid.uuid4().hex[:8]}"
    staging.mkdir()
    try:
        final = _build(staging, manifest, model, calibration, golden, check)
        _fsync_folder(staging)
        _publish(staging, out_dir, overwrite=overwrite)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return final


def _build(
    staging: Path,
    manifest: Manifest,
    model: torch.nn.Module,
    calibration: Images,
    golden: Images,
    check: Images,
) -> Manifest:
    torch_probs = torch_probabilities(model, golden)
    _check_probabilities(torch_probs, manifest)
    fp32_path = staging / MODEL_FP32
    export_onnx(model, fp32_path, example=golden[:1])
    try:
        onnx.checker.check_model(str(fp32_path), full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        raise PackageError(MODEL_FP32, f"fails the ONNX checker: {exc}") from exc
    fp32 = session(fp32_path)
    check_io(fp32, manifest, MODEL_FP32)
    diff = float(np.abs(run(fp32, golden) - torch_probs).max())
    if diff > PARITY_ATOL:
        raise PackageError(
            MODEL_FP32,
            f"onnxruntime's probabilities differ from torch's by up to {diff:.2g} on the golden "
            f"inputs (allowed {PARITY_ATOL:g}); the export is not faithful",
        )
    agreement = quantize(fp32_path, staging / MODEL_INT8, calibration, check)
    int8 = session(staging / MODEL_INT8)
    check_io(int8, manifest, MODEL_INT8)
    (staging / LABELS).write_text("".join(f"{lb}\n" for lb in manifest.labels), encoding="utf-8")
    np.savez(
        staging / GOLDEN,
        image=golden,
        probability=torch_probs,
        probability_int8=run(int8, golden),
    )
    metrics = {**manifest.metrics, "int8_top1_agreement": round(agreement, 4)}
    digests = {file: sha256_file(staging / file) for file in PACKAGE_FILES}
    final = manifest.model_copy(update={"sha256": digests, "metrics": metrics})
    (staging / MANIFEST).write_text(final.model_dump_json(indent=2) + "\n", encoding="utf-8")
    return final


def _manifest(fields: ManifestFields) -> Manifest:
    """The manifest without digests, validated before any slow work starts."""
    task = TASK_ALIASES.get(fields["task"], fields["task"])
    size = fields["input_size"]
    data = {
        "format_version": FORMAT_VERSION,
        "name": fields["name"],
        "version": fields["version"],
        "task": task,
        "labels": list(fields["labels"]),
        "input": {"height": size, "width": size},
        "output": {"activation": ACTIVATION.get(task, "softmax")},
        "thresholds": _thresholds(fields["thresholds"], task),
        "metrics": _plain_json(fields["metrics"], "metrics"),
        "dataset": fields["dataset"],
        "backbone": fields["backbone"],
        "created_at": datetime.now(UTC),
    }
    return parse_manifest(data, MANIFEST)


def _plain_json(value: Mapping[str, Any], what: str) -> Any:
    """``value`` as plain JSON types: numpy scalars and arrays become numbers and lists."""

    def plain(obj: Any) -> Any:
        if isinstance(obj, np.generic | np.ndarray):
            return obj.tolist()
        raise TypeError(f"{type(obj).__name__} is not JSON")

    try:
        return json.loads(json.dumps(dict(value), default=plain))
    except (TypeError, ValueError) as exc:
        raise PackageError(MANIFEST, f"{what} cannot be written as JSON ({exc})") from exc


def _thresholds(value: Thresholds | Mapping[str, Any] | float | None, task: str) -> Any:
    default = DEFAULT_THRESHOLD.get(task, 0.0)
    if value is None:
        return {"default": default}
    if isinstance(value, Thresholds):
        return value
    if isinstance(value, int | float):
        return {"default": float(value)}
    if value and set(value) <= {"default", "per_label"}:
        return {"default": default, **value}
    return {"default": default, "per_label": dict(value)}


def _images(array: Images, what: str, size: int) -> Images:
    array = np.asarray(array)
    if array.dtype != np.uint8 or array.ndim != 4 or array.shape[1:] != (size, size, 3):
        raise PackageError(
            what, f"is {array.dtype} {array.shape}; expected uint8 (N, {size}, {size}, 3)"
        )
    if array.shape[0] == 0:
        raise PackageError(what, "holds no images; at least one is needed")
    return np.array(array, order="C", copy=True)  # ours: writable, contiguous, unshared


def _check_target(out_dir: Path, *, overwrite: bool) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise Conflict(f"{out_dir} exists and is not a folder; choose another package folder")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not overwrite:
        raise Conflict(f"{out_dir} already exists and is not empty; choose a new folder")


def _publish(staging: Path, out_dir: Path, *, overwrite: bool) -> None:
    """Move the finished package into place; an old one (``overwrite``) goes only afterwards."""
    _check_target(out_dir, overwrite=overwrite)
    if not out_dir.exists():
        staging.rename(out_dir)
        return
    if not any(out_dir.iterdir()):
        out_dir.rmdir()
        staging.rename(out_dir)
        return
    old = out_dir.parent / f".{out_dir.name}.old-{uuid.uuid4().hex[:8]}"
    out_dir.rename(old)
    staging.rename(out_dir)
    shutil.rmtree(old, ignore_errors=True)


def _fsync_folder(folder: Path) -> None:
    for path in folder.iterdir():
        with path.open("rb") as f:
            os.fsync(f.fileno())
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def _eval_mode(model: torch.nn.Module) -> Iterator[torch.nn.Module]:
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


def torch_probabilities(model: torch.nn.Module, images: Images) -> Probs:
    """The torch model's ``(N, K)`` float32 output, in eval mode, batch by batch."""
    with _eval_mode(model), torch.inference_mode():
        parts = [
            model(torch.from_numpy(images[i : i + RUN_BATCH])).float().numpy()
            for i in range(0, len(images), RUN_BATCH)
        ]
    return np.ascontiguousarray(np.concatenate(parts), dtype=np.float32)


def _check_probabilities(probs: Probs, manifest: Manifest) -> None:
    k = len(manifest.labels)
    if probs.ndim != 2 or probs.shape[1] != k:
        raise PackageError(
            "model", f"gives outputs of shape {probs.shape}; expected (N, {k}), one per label"
        )
    if manifest.task == "single_label":
        worst = float(np.abs(probs.sum(axis=1) - 1.0).max())
        if worst > 1e-3 or probs.min() < 0:
            raise PackageError(
                "model", f"rows do not look like softmax probabilities (a row sums to "
                f"{1 + worst:.3f}); a single_label model must end in softmax",
            )  # fmt: skip
    elif probs.min() < 0 or probs.max() > 1:
        raise PackageError(
            "model", "gives values outside [0, 1]; a multi_label model must end in sigmoid"
        )


def export_onnx(model: torch.nn.Module, path: Path, *, example: Images) -> None:
    """TorchScript-based ONNX export, opset 17, input ``image`` / output ``probability`` with a
    dynamic batch axis ``N``; then the graph clean-ups of :mod:`.graph`."""
    with _eval_mode(model), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's deprecation and constant-folding notes
        torch.onnx.export(
            model,
            (torch.from_numpy(np.ascontiguousarray(example)),),
            str(path),
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_axes={INPUT_NAME: {0: "N"}, OUTPUT_NAME: {0: "N"}},
            opset_version=OPSET,
            dynamo=False,
        )
    simplify_onnx(path)


def session(path: Path) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.log_severity_level = 3  # no notes about unused initialisers
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def run(sess: ort.InferenceSession, images: Images) -> Probs:
    parts = [
        sess.run([OUTPUT_NAME], {INPUT_NAME: images[i : i + RUN_BATCH]})[0]
        for i in range(0, len(images), RUN_BATCH)
    ]
    return np.ascontiguousarray(np.concatenate(parts), dtype=np.float32)


def top1_agreement(a: Probs, b: Probs) -> float:
    return float((a.argmax(axis=1) == b.argmax(axis=1)).mean())


class _Batches(CalibrationDataReader):  # type: ignore[misc]  # onnxruntime ships no types
    def __init__(self, images: Images) -> None:
        self._batches = iter(
            [
                {INPUT_NAME: images[i : i + CALIBRATION_BATCH]}
                for i in range(0, len(images), CALIBRATION_BATCH)
            ]
        )

    def get_next(self) -> dict[str, Images] | None:
        return next(self._batches, None)


def quantize(fp32_path: Path, int8_path: Path, calibration: Images, check: Images) -> float:
    """Write ``int8_path`` (see the module notes); return its top-1 agreement with fp32 on
    ``check``, or raise PackageError if no recipe reaches :data:`MIN_AGREEMENT`."""
    want = run(session(fp32_path), check)
    tried: list[str] = []
    with tempfile.TemporaryDirectory(prefix="tagtrain-quantize-") as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        ort.set_default_logger_severity(3)  # the quantiser's own sessions log unused initialisers
        quant_pre_process(str(fp32_path), str(prepared))
        graph = _named_nodes(onnx.load(str(prepared)))
        onnx.save(graph, str(prepared))
        for share in FLOAT_CONV_SHARES:
            float_nodes, float_convs, convs = float_node_names(graph, share)
            quantize_static(
                str(prepared),
                str(int8_path),
                _Batches(calibration),
                quant_format=QuantFormat.QDQ,
                per_channel=True,
                activation_type=QuantType.QUInt8,
                weight_type=QuantType.QInt8,
                nodes_to_exclude=float_nodes,
                calibrate_method=CalibrationMethod.MinMax,
            )
            agreement = top1_agreement(run(session(int8_path), check), want)
            if agreement >= MIN_AGREEMENT:
                return agreement
            flips = round((1 - agreement) * len(check))
            tried.append(f"{agreement:.1%} ({flips} differ) with {float_convs} of {convs} float")
    raise PackageError(
        MODEL_INT8,
        f"top-1 agrees with {MODEL_FP32} on too few of the {len(check)} check images: "
        f"{'; '.join(tried)} convolutions, under the {MIN_AGREEMENT:.0%} bar; the package was "
        "not written",
    )


def _named_nodes(model: onnx.ModelProto) -> onnx.ModelProto:
    """Give every node a unique name (quantisation excludes nodes by name)."""
    seen: set[str] = set()
    for i, node in enumerate(model.graph.node):
        if not node.name or node.name in seen:
            node.name = f"{node.op_type}_{i}"
        seen.add(node.name)
    return model


def float_node_names(model: onnx.ModelProto, share: float) -> tuple[list[str], int, int]:
    """Nodes kept float: every node before the first int8 Conv (normalisation, then the first
    ``share`` of the Convs with their pads, activations and additions, so no tensor in there is
    rounded) and every node after the last Conv's activation (pooling, classifier,
    softmax/sigmoid). Returns ``(names, float convs, all convs)``; ONNX graphs are in
    topological order, so "before" means "on the input side"."""
    nodes = list(model.graph.node)
    convs = [i for i, node in enumerate(nodes) if node.op_type == "Conv"]
    if not convs:
        return [], 0, 0
    n_float = min(math.ceil(share * len(convs)), len(convs) - 1)
    tail = convs[-1] + 1
    if tail < len(nodes) and nodes[tail].op_type in ("Relu", "Clip"):
        tail += 1  # the activation fuses into the int8 convolution
    picked = nodes[: convs[n_float]] + nodes[tail:]
    return [node.name for node in picked], n_float, len(convs)
