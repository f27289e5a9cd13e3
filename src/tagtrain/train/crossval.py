"""Cross-validation of the head, for small datasets: every example scored by a model that never
trained on it, and the shipped model trained on all of them.

A held-out test split of a small dataset is both a poor estimate (36 photos: one photo is ~3
points) and a loss to the model (it never trains on them). Here the examples are cut into ``k``
stratified folds (:func:`tagtrain.train.splits.stratified_folds`, so near-duplicates and bursts
stay in one fold), and for each fold ``f``:

- the head strength is chosen on fold ``f + 1`` (validation) from heads trained on the other
  ``k - 2`` folds, as a held-out training chooses it; multi-label thresholds too (best F1);
- the head is refitted on every fold but ``f``, all views, as the shipped model is on all folds;
- fold ``f`` (test) is scored through it and cut at that fold's thresholds.

Fold ``f``'s labels decide nothing about its own scores. The shipped model takes the head strength
most folds chose and, multi-label, thresholds chosen on all the out-of-fold scores (models trained
on ``k - 1`` folds, its closest kin); it has no test of its own: the report describes the
procedure that made it, measured on every example, as cross-validation does.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray

from tagtrain.package import metrics
from tagtrain.train.evaluate import (
    SINGLE_LABEL_THRESHOLDS,
    Scores,
    multi_label_thresholds,
    probabilities,
)
from tagtrain.train.head import HeadFit, HeadSettings, Task

Array = NDArray[Any]
Index = NDArray[np.int64]
#: ``view_rows(idx)``: features, targets and weights of every view of examples ``idx``;
#: ``plain_rows(idx)``: features and targets of their plain views.
ViewRows = Callable[[Index], tuple[Array, Array, Array]]
PlainRows = Callable[[Index], tuple[Array, Array]]


@dataclass
class CrossValidation:
    """The out-of-fold ``scores`` of every example, the head strength ``c`` for the shipped
    model, the first fold's head ``curve`` and one summary per fold."""

    scores: Scores
    c: float
    curve: list[dict[str, Any]] = field(default_factory=list)
    folds: list[dict[str, Any]] = field(default_factory=list)


def cross_validate(
    folds: Index,
    targets: Array,
    *,
    view_rows: ViewRows,
    plain_rows: PlainRows,
    head: HeadSettings,
    on_fold: Callable[[int, int, HeadFit], None] = lambda _done, _total, _fit: None,
) -> CrossValidation:
    """Score every example out of fold (see the module docstring). ``folds``: ``(N,)`` fold
    index ``0..k-1`` of each example, ``targets`` theirs (``(N,)`` or ``(N, K)``);
    ``on_fold(done, k, fit)`` after each fold, with the head its validation fold judged."""
    k = int(folds.max()) + 1
    if k < 3:  # a fold each for testing and choosing, at least one to train on
        raise ValueError(f"cross-validating a head needs at least 3 folds, got {k}")
    n, n_out = folds.size, len(head.classes)
    probs = np.zeros((n, n_out))
    cut = np.zeros((n, n_out))  # multi-label: the thresholds each example's fold chose
    chosen: list[float] = []
    curve: list[dict[str, Any]] = []
    summaries: list[dict[str, Any]] = []
    for f in range(k):
        test, val = np.flatnonzero(folds == f), np.flatnonzero(folds == (f + 1) % k)
        rest = np.flatnonzero(folds != f)
        val_rows = plain_rows(val)
        judged = head.select(view_rows(np.setdiff1d(rest, val)), val_rows)
        refit = head.fit(view_rows(rest), judged.c, init=judged)
        probs[test] = _probabilities(refit, plain_rows(test)[0], head.task)
        if head.task == "multi_label":
            val_probs = _probabilities(judged, val_rows[0], head.task)
            cut[test] = metrics.best_f1_thresholds(val_rows[1], val_probs)
        chosen.append(judged.c)
        if f == 0:
            curve = [row | {"c": judged.c, "fold": 1} for row in judged.curve]
        summaries.append(
            {
                "fold": f + 1,
                "images": int(test.size),
                "c": judged.c,
                "val_metric": judged.val_metric,
            }
        )
        on_fold(f + 1, k, judged)
    if head.task == "multi_label":
        thresholds = multi_label_thresholds(head.classes, targets, probs)
        scores = Scores(np.arange(n), probs, thresholds, cut)
    else:
        scores = Scores(np.arange(n), probs, SINGLE_LABEL_THRESHOLDS)
    return CrossValidation(scores, _most_chosen(chosen), curve, summaries)


def _probabilities(fit: HeadFit, x: Array, task: Task) -> Array:
    return probabilities(torch.from_numpy(np.asarray(x, dtype=np.float32)), fit.head, task)


def _most_chosen(values: list[float]) -> float:
    """The value most folds chose; ties to the smallest (the strongest penalty)."""
    counts = Counter(values)
    top = max(counts.values())
    return min(v for v, n in counts.items() if n == top)
