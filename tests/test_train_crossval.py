"""Cross-validation of the head (train/crossval.py) and its folds (train/splits.py), on synthetic
features: a fold's labels never decide its own scores; folds keep groups whole and stay
stratified."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

from tagtrain.train.crossval import cross_validate
from tagtrain.train.head import HeadSettings
from tagtrain.train.splits import stratified_folds

Array = NDArray[Any]
K_FOLDS = 5


def _blobs(n: int, classes: int, seed: int = 0) -> tuple[Array, Array]:
    """``n`` points around ``classes`` centres in 16 dimensions, overlapping a little."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % classes
    centres = rng.normal(size=(classes, 16))
    return centres[y] + rng.normal(scale=1.2, size=(n, 16)), y


def _run(x: Array, y: Array, folds: Array, task: Any, grid: tuple[float, ...] = (10.0,)) -> Any:
    n_out = y.shape[1] if y.ndim == 2 else int(y.max()) + 1
    classes = tuple(f"c{k}" for k in range(n_out))
    noisy = x + np.random.default_rng(1).normal(scale=0.3, size=x.shape)  # an "augmented view"

    def view_rows(idx: Array) -> tuple[Array, Array, Array]:
        feats = np.concatenate([x[idx], noisy[idx]])
        weights = np.r_[np.ones(idx.size), np.full(idx.size, 0.3)]
        return feats, np.concatenate([y[idx], y[idx]]), weights

    settings = HeadSettings(task, classes, grid, 0.0)
    cv = cross_validate(
        folds, y, view_rows=view_rows, plain_rows=lambda idx: (x[idx], y[idx]), head=settings
    )
    return cv, view_rows, settings


def test_a_folds_labels_decide_nothing_about_its_scores() -> None:
    x, y = _blobs(120, 3)
    folds = stratified_folds(np.eye(3, dtype=np.int64)[y], np.arange(120), K_FOLDS, seed=0)
    first, _, _ = _run(x, y, folds, "single_label")
    relabeled = y.copy()
    in_fold = folds == 0
    relabeled[in_fold] = (y[in_fold] + 1) % 3  # every label of fold 0 wrong
    second, _, _ = _run(x, relabeled, folds, "single_label")
    np.testing.assert_array_equal(first.scores.probs[in_fold], second.scores.probs[in_fold])
    assert not np.allclose(first.scores.probs[~in_fold], second.scores.probs[~in_fold])
    assert first.scores.idx.tolist() == list(range(120))
    accuracy = float((first.scores.probs.argmax(1) == y).mean())
    assert 0.6 < accuracy < 1.0  # scored out of fold: good, not perfect on overlapping blobs
    assert [f["images"] for f in first.folds] == [24] * 5
    assert first.curve and all(row["fold"] == 1 for row in first.curve)


def test_multi_label_cuts_each_fold_at_its_own_thresholds() -> None:
    x, single = _blobs(150, 3, seed=2)
    y = np.eye(3, dtype=np.int64)[single]
    y[::4, (single[::4] + 1) % 3] = 1  # every 4th image carries a second label
    folds = stratified_folds(y, np.arange(150), K_FOLDS, seed=0)
    cv, view_rows, settings = _run(x, y, folds, "multi_label")
    cut = cv.scores.cut
    assert cut is not None and cut.shape == (150, 3)
    for f in range(K_FOLDS):
        rows = cut[folds == f]
        assert (rows == rows[0]).all()  # one set of thresholds per fold
    assert len({tuple(cut[folds == f][0]) for f in range(K_FOLDS)}) > 1
    per_label = cv.scores.thresholds["per_label"]
    assert set(per_label) == {"c0", "c1", "c2"} and all(0 < t < 1 for t in per_label.values())
    # Changing fold 0's labels leaves its thresholds and scores alone.
    changed = y.copy()
    changed[folds == 0] = 1 - changed[folds == 0]
    again, _, _ = _run(x, changed, folds, "multi_label")
    np.testing.assert_array_equal(again.scores.cut[folds == 0], cut[folds == 0])
    np.testing.assert_array_equal(again.scores.probs[folds == 0], cv.scores.probs[folds == 0])
    final = settings.fit(view_rows(np.arange(150)), cv.c)
    assert final.head.weight.shape == (3, 16)


def test_the_shipped_strength_is_the_one_most_folds_chose() -> None:
    x, y = _blobs(100, 2, seed=3)
    folds = stratified_folds(np.eye(2, dtype=np.int64)[y], np.arange(100), K_FOLDS, seed=0)
    cv, _, _ = _run(x, y, folds, "single_label", grid=(0.01, 1.0, 100.0))
    chosen = [f["c"] for f in cv.folds]
    assert cv.c in chosen
    assert chosen.count(cv.c) == max(chosen.count(c) for c in chosen)


def test_folds_keep_groups_whole_and_stay_stratified() -> None:
    rng = np.random.default_rng(0)
    n = 200
    y = np.eye(4, dtype=np.int64)[rng.integers(0, 4, n)]
    groups = np.arange(n) // 3  # triplets of near-duplicates
    folds = stratified_folds(y, groups, K_FOLDS, seed=7)
    assert set(folds.tolist()) == set(range(K_FOLDS))
    for g in np.unique(groups):
        assert len(set(folds[groups == g].tolist())) == 1
    sizes = np.bincount(folds)
    assert sizes.max() - sizes.min() <= 3
    per_fold = np.stack([y[folds == f].sum(axis=0) for f in range(K_FOLDS)])
    assert (np.abs(per_fold - y.sum(axis=0) / K_FOLDS) <= 3).all()
    np.testing.assert_array_equal(folds, stratified_folds(y, groups, K_FOLDS, seed=7))


def test_fewer_than_two_folds_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 2 folds"):
        stratified_folds(np.eye(2, dtype=np.int64), np.arange(2), 1, seed=0)
