"""The last stage of a training: out-of-sample scores turned into the report, and the final model
checked on its golden inputs.

Scores come one of two ways, each never deciding anything with the examples it scores:

- :func:`holdout_scores`: the test split, read here for the first time, through the final model;
  multi-label thresholds chosen on the validation split;
- :func:`tagtrain.train.crossval.cross_validate`: every example through the fold model that did
  not train on it, cut at the thresholds that fold chose on its own validation fold.

:func:`evaluate` then writes the report, the test predictions and the golden inputs. The pieces
are plain functions of what they are given:

- :func:`probabilities`: features ``(N, F)`` through a head -> probabilities ``(N, K)``.
- :func:`multi_label_thresholds`: per-label thresholds (best F1) on out-of-sample scores.
- :func:`check_parity`: the returned module on the golden inputs against the cached-feature path.
- :func:`predictions`: one row a scored image (true, predicted, probabilities) for the report.
- :func:`headline`: the report's one number, for the progress event.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn

from tagtrain.errors import TagtrainError
from tagtrain.package import metrics
from tagtrain.train.backbone import BackboneSpec
from tagtrain.train.examples import Encoded
from tagtrain.train.features import Classifier, FeatureNet, Task
from tagtrain.train.images import SnapshotImages
from tagtrain.train.progress import Progress

Array = NDArray[Any]
#: ``features_of(idx)``: the final network's features ``(len(idx), F)`` of the plain views of
#: examples ``idx``, read from the embedding cache.
FeaturesOf = Callable[[NDArray[np.int64]], torch.Tensor]
PARITY_TOLERANCE = 1e-4  # cached-feature path vs the exported module, on the golden inputs
SINGLE_LABEL_THRESHOLDS: dict[str, Any] = {"default": 0.0, "per_label": {}}  # arg-max decides


@dataclass(frozen=True)
class Scores:
    """Out-of-sample probabilities ``probs`` ``(N, K)`` of the examples ``idx``; ``thresholds``:
    the manifest's (the shipped model's); ``cut``: ``(N, K)`` per-example thresholds that decided
    the reported predictions when they differ from ``thresholds`` (a cross-validation's)."""

    idx: NDArray[np.int64]
    probs: Array
    thresholds: dict[str, Any]
    cut: Array | None = None


@dataclass(frozen=True)
class Evaluation:
    """What the last stage adds to a training's result. ``model``: the returned module (eval
    mode, no gradients); ``metrics``: the report on the scored examples; ``test_inputs``: the
    plain inputs the package checks its quantised model on, ``golden`` the first of them (the
    ones the parity check ran)."""

    model: Classifier
    thresholds: dict[str, Any]
    metrics: dict[str, Any]
    test_predictions: list[dict[str, Any]]
    golden: NDArray[np.uint8]
    test_inputs: NDArray[np.uint8]


def holdout_scores(
    data: Encoded,
    index: Mapping[str, NDArray[np.int64]],
    *,
    final_head: nn.Linear,
    val_head: nn.Linear,
    features_of: FeaturesOf,
) -> Scores:
    """The test split, ``index["test"]``, through the final head; ``val_head`` is the head
    validation judged (never trained on validation's images), whose validation probabilities
    choose the multi-label thresholds."""
    val_idx, test_idx = index["val"], index["test"]
    thresholds = SINGLE_LABEL_THRESHOLDS
    if data.task == "multi_label":
        val_probs = probabilities(features_of(val_idx), val_head, data.task)
        targets = np.asarray(data.targets)[val_idx]
        thresholds = multi_label_thresholds(data.classes, targets, val_probs)
    test_probs = probabilities(features_of(test_idx), final_head, data.task)
    return Scores(test_idx, test_probs, thresholds)


def evaluate(
    data: Encoded,
    scores: Scores,
    *,
    spec: BackboneSpec,
    final_net: FeatureNet,
    final_head: nn.Linear,
    features_of: FeaturesOf,
    images: SnapshotImages,
    check_idx: NDArray[np.int64],
    golden_images: int,
    progress: Progress,
) -> Evaluation:
    """The report on ``scores`` and the final model (``final_net`` + ``final_head``) with its
    golden inputs: the first ``golden_images`` of ``check_idx``, whose plain inputs (from
    ``images``) are the package's check inputs."""
    progress.step("evaluate", 0, 1, message="scoring images the models did not train on")
    targets = np.asarray(data.targets)[scores.idx]
    report = metrics.report(
        data.task, data.classes, targets, scores.probs, scores.thresholds, scores.cut
    )
    model = Classifier(spec, final_net, final_head, data.task)
    model.eval().requires_grad_(False)
    test_inputs = np.stack([images.plain(int(i)) for i in check_idx])
    golden = test_inputs[:golden_images]
    want = probabilities(features_of(check_idx[:golden_images]), final_head, data.task)
    check_parity(model, golden, want)
    cut = scores.cut
    if cut is None:
        cut = np.broadcast_to(
            metrics.label_thresholds(data.classes, scores.thresholds), scores.probs.shape
        )
    rows = predictions(data, scores.idx, scores.probs, cut)
    progress.step("evaluate", 1, 1, metric=headline(report))
    return Evaluation(model, scores.thresholds, report, rows, golden, test_inputs)


def probabilities(features: torch.Tensor, head: nn.Linear, task: Task) -> Array:
    """``head`` on ``features`` ``(N, F)`` -> float64 probabilities ``(N, K)``: sigmoid for
    multi-label, softmax for single-label."""
    with torch.inference_mode():
        logits = head(features)
        probs = torch.sigmoid(logits) if task == "multi_label" else logits.softmax(1)
    return probs.double().numpy()


def multi_label_thresholds(
    classes: tuple[str, ...], targets: Array, probs: Array
) -> dict[str, Any]:
    """The manifest's ``thresholds`` for a multi-label model: per label, the one that maximises
    F1 on out-of-sample scores (``targets``, ``probs``: ``(N, K)``)."""
    chosen = metrics.best_f1_thresholds(targets, probs)
    return {
        "default": metrics.DEFAULT_THRESHOLD,
        "per_label": {label: float(t) for label, t in zip(classes, chosen, strict=True)},
    }


def check_parity(model: nn.Module, golden: NDArray[np.uint8], want: Array) -> None:
    """Raise unless ``model`` on ``golden`` (uint8 ``(G, H, W, 3)``) gives ``want`` ``(G, K)``,
    the probabilities of the cached-feature path, to within :data:`PARITY_TOLERANCE`."""
    with torch.inference_mode():
        got = model(torch.from_numpy(golden)).double().numpy()
    diff = float(np.abs(got - want).max()) if got.size else 0.0
    if diff > PARITY_TOLERANCE:
        raise TagtrainError(
            f"internal error: the trained model and its cached features disagree by {diff:.2e}"
        )


def predictions(
    data: Encoded, idx: NDArray[np.int64], probs: Array, cut: Array
) -> list[dict[str, Any]]:
    """One row per example of ``idx``: its true and predicted classes and ``probs`` (``(N, K)``,
    in ``idx`` order), multi-label predictions cut at ``cut`` (``(N, K)`` thresholds)."""
    classes = data.classes
    out = []
    for row, i in enumerate(idx):
        target = np.asarray(data.targets)[i]
        if data.task == "single_label":
            true = [classes[int(target)]]
            predicted = [classes[int(probs[row].argmax())]]
        else:
            true = [c for c, t in zip(classes, target, strict=True) if t]
            predicted = [c for c, p, t in zip(classes, probs[row], cut[row], strict=True) if p >= t]
        out.append(
            {
                "image_id": data.examples[i].image_id,
                "true": true,
                "predicted": predicted,
                "correct": sorted(true) == sorted(predicted),
                "probabilities": {c: float(p) for c, p in zip(classes, probs[row], strict=True)},
            }
        )
    return out


def headline(report: dict[str, Any]) -> float | None:
    """The report's headline number: accuracy (single-label) or mAP (multi-label)."""
    value = report.get("accuracy", report.get("map"))
    return float(value) if value is not None else None
