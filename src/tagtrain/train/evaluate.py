"""The last stage of a training: the test split, read here for the first time, scored through the
final model.

:func:`evaluate` runs the stage; the pieces are plain functions of what they are given:

- :func:`probabilities`: features ``(N, F)`` through a head -> probabilities ``(N, K)``.
- :func:`multi_label_thresholds`: per-label thresholds (best F1), chosen on the validation split.
- :func:`check_parity`: the returned module on the golden inputs against the cached-feature path
  the metrics were computed on.
- :func:`predictions`: one row a test image (true, predicted, probabilities) for the report.
- :func:`headline`: the report's one number, for the progress event.

Nothing here decides with the test split: the thresholds see validation only, and the test split
is only scored.
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


@dataclass(frozen=True)
class Evaluation:
    """What the last stage adds to a training's result. ``model``: the returned module (eval
    mode, no gradients); ``metrics``: the report on the test split; ``test_inputs``: the test
    split's plain inputs, ``golden`` the first of them (the ones the parity check ran)."""

    model: Classifier
    thresholds: dict[str, Any]
    metrics: dict[str, Any]
    test_predictions: list[dict[str, Any]]
    golden: NDArray[np.uint8]
    test_inputs: NDArray[np.uint8]


def evaluate(
    data: Encoded,
    index: Mapping[str, NDArray[np.int64]],
    *,
    spec: BackboneSpec,
    final_net: FeatureNet,
    final_head: nn.Linear,
    val_head: nn.Linear,
    features_of: FeaturesOf,
    images: SnapshotImages,
    golden_images: int,
    progress: Progress,
) -> Evaluation:
    """Score the final model (``final_net`` + ``final_head``) on the test split, ``index["test"]``.

    ``features_of`` gives the final network's features, from which the metrics are computed;
    ``val_head`` is the head validation judged (never trained on validation's images), whose
    validation probabilities choose the multi-label thresholds. ``images`` gives the test
    split's plain inputs; the first ``golden_images`` of them are the golden inputs."""
    progress.step("evaluate", 0, 1, message="evaluating on the test split")
    task, classes = data.task, data.classes
    targets = np.asarray(data.targets)
    val_idx, test_idx = index["val"], index["test"]
    if task == "multi_label":
        val_probs = probabilities(features_of(val_idx), val_head, task)
        thresholds = multi_label_thresholds(classes, targets[val_idx], val_probs)
    else:  # single-label predicts the most probable class: no thresholds
        thresholds = {"default": 0.0, "per_label": {}}
    test_probs = probabilities(features_of(test_idx), final_head, task)
    report = metrics.report(task, classes, targets[test_idx], test_probs, thresholds)
    model = Classifier(spec, final_net, final_head, task)
    model.eval().requires_grad_(False)
    test_inputs = np.stack([images.plain(int(i)) for i in test_idx])
    golden = test_inputs[:golden_images]
    check_parity(model, golden, test_probs[: len(golden)])
    rows = predictions(data, test_idx, test_probs, thresholds)
    progress.step("evaluate", 1, 1, metric=headline(report))
    return Evaluation(model, thresholds, report, rows, golden, test_inputs)


def probabilities(features: torch.Tensor, head: nn.Linear, task: Task) -> Array:
    """``head`` on ``features`` ``(N, F)`` -> float64 probabilities ``(N, K)``: sigmoid for
    multi-label, softmax for single-label."""
    with torch.inference_mode():
        logits = head(features)
        probs = torch.sigmoid(logits) if task == "multi_label" else logits.softmax(1)
    return probs.double().numpy()


def multi_label_thresholds(
    classes: tuple[str, ...], val_targets: Array, val_probs: Array
) -> dict[str, Any]:
    """The manifest's ``thresholds`` for a multi-label model: per label, the one that maximises
    F1 on the validation split (``val_targets``, ``val_probs``: ``(N, K)``)."""
    chosen = metrics.best_f1_thresholds(val_targets, val_probs)
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
    data: Encoded, idx: NDArray[np.int64], probs: Array, thresholds: dict[str, Any]
) -> list[dict[str, Any]]:
    """One row per example of ``idx``: its true and predicted classes and ``probs`` (``(N, K)``,
    in ``idx`` order), multi-label predictions cut at ``thresholds``."""
    classes = data.classes
    cut = metrics.label_thresholds(classes, thresholds)
    out = []
    for row, i in enumerate(idx):
        target = np.asarray(data.targets)[i]
        if data.task == "single_label":
            true = [classes[int(target)]]
            predicted = [classes[int(probs[row].argmax())]]
        else:
            true = [c for c, t in zip(classes, target, strict=True) if t]
            predicted = [c for c, p, t in zip(classes, probs[row], cut, strict=True) if p >= t]
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
