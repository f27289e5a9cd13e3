"""Score a package on labeled images: the same report the training job writes for its test split.

Samples come from anywhere (the CLI reads folders and CSVs); each is a name, its bytes and its tags.
Decoding is exact (no JPEG draft) so figures match training's, and so a plain onnxruntime script
reading only ``manifest.json`` and ``labels.txt`` gets the same numbers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from tagtrain.errors import BadInput, TagtrainError
from tagtrain.package.metrics import report
from tagtrain.runtime.classifier import Classifier
from tagtrain.runtime.decode import decode_for_model

UNKNOWN = "UNKNOWN"
BATCH = 32


@dataclass(frozen=True)
class Sample:
    name: str
    read: Callable[[], bytes]
    tags: tuple[str, ...]


@dataclass
class Evaluation:
    report: dict[str, Any]
    scored: int
    skipped: list[tuple[str, str]] = field(default_factory=list)


def evaluate(classifier: Classifier, samples: Iterable[Sample]) -> Evaluation:
    """Run every sample through the package and build the report; samples that cannot be scored
    (unreadable, or a single-label truth that is not exactly one label) are listed as skipped."""
    manifest = classifier.manifest
    labels = list(manifest.labels)
    truths: list[Any] = []
    inputs: list[NDArray[np.uint8]] = []
    skipped: list[tuple[str, str]] = []
    for sample in samples:
        try:
            truth = _truth(manifest.task, labels, sample.tags)
            pixels = decode_for_model(
                sample.read(), sample.name, size=classifier.input_size,
                limits=classifier.limits, draft=False,
            )  # fmt: skip
        except TagtrainError as exc:
            skipped.append((sample.name, exc.message))
            continue
        truths.append(truth)
        inputs.append(pixels)
    if not inputs:
        raise BadInput("no image could be scored: give labeled images (folders or a labels CSV)")
    probs = np.concatenate(
        [
            classifier.probabilities(np.stack(inputs[i : i + BATCH]))
            for i in range(0, len(inputs), BATCH)
        ]
    )
    thresholds = manifest.thresholds.model_dump()
    result = report(manifest.task, labels, np.asarray(truths), probs, thresholds)
    return Evaluation(result, len(inputs), skipped)


def _truth(task: str, labels: list[str], tags: tuple[str, ...]) -> Any:
    mine = [t for t in tags if t in labels]
    if task == "multi_label":
        return [1 if lb in mine else 0 for lb in labels]
    if len(mine) == 1:
        return labels.index(mine[0])
    if not mine and UNKNOWN in labels:
        return labels.index(UNKNOWN)
    if not mine:
        raise BadInput(f"none of its tags {list(tags)} is a label of this model")
    raise BadInput(f"it carries several labels {mine}; a single-label model needs one")
