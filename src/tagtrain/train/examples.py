"""What a training job is asked to learn, and the check that refuses what cannot be learned.

A :class:`TrainRequest` is a snapshot: the task, the labels (the output classes, in order) and the
examples (image id, sha256 of its bytes, its tags, and where it came from). :func:`check_request`
enforces the minimums at the edge, before any pixel is decoded, and returns the warnings a person
should see on the job. :func:`encode` turns the examples into the arrays training works on.

Single-label: an image carrying exactly one of the labels is an example of it; an image carrying
none becomes an example of :data:`UNKNOWN` when there are at least :data:`MIN_PER_LABEL` of them
(so the model can say "none of these"), otherwise it is left out; an image carrying several is
ambiguous and left out. Multi-label: every image is an example; one with none of the labels is a
negative for all of them.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from tagtrain.errors import BadInput

Task = Literal["single_label", "multi_label"]
TASKS: tuple[Task, ...] = ("single_label", "multi_label")
UNKNOWN = "UNKNOWN"
MIN_LABELS = 2
MIN_PER_LABEL = 10
IMBALANCE_RATIO = 3.0  # warn when the most common label has more than this many times the least
MIN_NEGATIVES = 10  # multi-label: warn when fewer images than this lack a label


@dataclass(frozen=True)
class Example:
    """One image of the snapshot. ``machine``/``captured_at`` say which camera took it and when
    (None for uploads); frames of one machine seconds apart are kept in one split."""

    image_id: int
    sha256: str
    tags: tuple[str, ...]
    machine: str | None = None
    captured_at: datetime | None = None


@dataclass(frozen=True)
class TrainRequest:
    task: Task
    labels: tuple[str, ...]
    examples: tuple[Example, ...]


@dataclass(frozen=True)
class Encoded:
    """The examples training uses, in request order, and what became of the rest.

    ``classes``: the output names (single-label: the labels, then ``UNKNOWN`` if used).
    ``targets``: single-label ``(N,)`` int64 class indices; multi-label ``(N, K)`` float32 0/1.
    """

    task: Task
    classes: tuple[str, ...]
    examples: tuple[Example, ...]
    targets: NDArray[np.int64] | NDArray[np.float32]
    ambiguous: int  # single-label: images with several of the labels, left out
    unlabeled: int  # images with none of the labels (UNKNOWN, negatives, or left out)

    def label_matrix(self) -> NDArray[np.int64]:
        """``(N, C)`` 0/1 indicator of the classes, for either task (what splitting stratifies)."""
        if self.task == "multi_label":
            return np.asarray(self.targets, dtype=np.int64)
        onehot = np.zeros((len(self.examples), len(self.classes)), dtype=np.int64)
        onehot[np.arange(len(self.examples)), np.asarray(self.targets, dtype=np.int64)] = 1
        return onehot


def encode(request: TrainRequest) -> Encoded:
    """The examples and targets of a request (call :func:`check_request` first)."""
    labels = request.labels
    index = {label: k for k, label in enumerate(labels)}
    if request.task == "multi_label":
        targets = np.zeros((len(request.examples), len(labels)), dtype=np.float32)
        for row, ex in enumerate(request.examples):
            for tag in ex.tags:
                if tag in index:
                    targets[row, index[tag]] = 1.0
        unlabeled = int((targets.sum(axis=1) == 0).sum())
        return Encoded(request.task, labels, request.examples, targets, 0, unlabeled)

    single: list[tuple[Example, int]] = []
    none: list[Example] = []
    ambiguous = 0
    for ex in request.examples:
        hits = {index[t] for t in ex.tags if t in index}
        if len(hits) == 1:
            single.append((ex, hits.pop()))
        elif hits:
            ambiguous += 1
        else:
            none.append(ex)
    classes = labels
    if len(none) >= MIN_PER_LABEL:
        classes = (*labels, UNKNOWN)
        single += [(ex, len(labels)) for ex in none]
        single.sort(key=lambda pair: pair[0].image_id)
    kept = tuple(ex for ex, _ in single)
    target = np.array([k for _, k in single], dtype=np.int64)
    return Encoded(request.task, classes, kept, target, ambiguous, len(none))


def check_request(request: TrainRequest) -> list[str]:
    """Refuse a request below the minimums (:class:`BadInput`); return warnings for the job.

    Refused: an unknown task; fewer than 2 labels; repeated labels or image ids; ``UNKNOWN`` as
    a single-label label; labels no image carries (named); labels with fewer than 10 images.
    Warned: labels more than 3x apart in count, images left out (single-label: several labels,
    or none when too few for ``UNKNOWN``), and multi-label labels with few negatives.
    """
    if request.task not in TASKS:
        raise BadInput(f"task must be single_label or multi_label, not {request.task!r}")
    labels = request.labels
    if len(labels) < MIN_LABELS:
        raise BadInput(
            f"training needs at least {MIN_LABELS} labels; got {len(labels)} ({', '.join(labels)})"
        )
    repeated = sorted(label for label, n in Counter(labels).items() if n > 1)
    if repeated:
        raise BadInput(f"labels are listed more than once: {', '.join(repeated)}")
    if any(not label.strip() for label in labels):
        raise BadInput("a label is empty")
    if request.task == "single_label" and UNKNOWN in labels:
        raise BadInput(f"{UNKNOWN} is reserved for single-label images with none of the labels")
    ids = Counter(ex.image_id for ex in request.examples)
    twice = sorted(i for i, n in ids.items() if n > 1)
    if twice:
        raise BadInput(f"image ids appear more than once: {', '.join(map(str, twice[:10]))}")

    tagged = Counter(tag for ex in request.examples for tag in set(ex.tags))
    absent = [label for label in labels if tagged[label] == 0]
    if absent:
        raise BadInput(
            f"no image in the dataset carries the label{'s' if len(absent) > 1 else ''} "
            f"{', '.join(repr(a) for a in absent)}; tag some images or choose other labels"
        )
    data = encode(request)
    counts = dict(zip(data.classes, data.label_matrix().sum(axis=0).tolist(), strict=True))
    few = {label: n for label, n in counts.items() if n < MIN_PER_LABEL}
    if few:
        listed = ", ".join(f"{label!r} has {n}" for label, n in few.items())
        raise BadInput(
            f"too few images to train: {listed}; each label needs at least {MIN_PER_LABEL}"
            + (
                " (images with several of the labels do not count for single-label)"
                if data.ambiguous
                else ""
            )
        )
    return _warnings(request, data, counts)


def _warnings(request: TrainRequest, data: Encoded, counts: dict[str, int]) -> list[str]:
    warnings: list[str] = []
    most = max(counts, key=lambda label: counts[label])
    least = min(counts, key=lambda label: counts[label])
    if counts[most] > IMBALANCE_RATIO * counts[least]:
        warnings.append(
            f"labels are imbalanced: {most!r} has {counts[most]} images, {least!r} only "
            f"{counts[least]} (more than {IMBALANCE_RATIO:g}x apart); the model will favour "
            f"{most!r} - add images of the rarer labels"
        )
    if request.task == "single_label":
        if data.ambiguous:
            warnings.append(
                f"{data.ambiguous} image(s) carry more than one of the labels and were left "
                "out; single-label needs one label per image (or train a multi-label model)"
            )
        if data.unlabeled and UNKNOWN not in data.classes:
            warnings.append(
                f"{data.unlabeled} image(s) carry none of the labels and were left out (at least "
                f"{MIN_PER_LABEL} are needed to learn an {UNKNOWN} class)"
            )
    else:
        n = len(data.examples)
        for label in request.labels:
            if n - counts[label] < MIN_NEGATIVES:
                warnings.append(
                    f"few negatives for {label!r}: only {n - counts[label]} image(s) lack it, so "
                    "the model cannot learn well when it is absent"
                )
    return warnings
