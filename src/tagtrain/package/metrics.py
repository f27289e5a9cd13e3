"""Evaluation metrics: pure numpy functions, array in, array out (no torch, no scikit-learn).

Training writes :func:`report` on the test split into the manifest, and ``tagtrain evaluate`` (the
runtime side, which never imports torch) prints the same :func:`report` on any labeled folder, so the
two agree to the last digit.

Glossary and shapes (``N`` examples, ``K`` labels, in the model's output order):

- ``probs``: ``(N, K)`` float, the model's output (softmax rows for single-label, independent
  sigmoids for multi-label).
- single-label ``y_true``: ``(N,)`` int class indices in ``[0, K)``; ``y_pred``: the same.
- multi-label ``y_true``: ``(N, K)`` 0/1 (or bool) indicator matrix.
- ``thresholds``: ``(K,)`` float; a label is predicted when ``prob >= threshold``.

Conventions follow scikit-learn's (the tests check them against it): a ratio with a zero
denominator is 0 (``zero_division=0``); the confusion matrix has true classes as rows and predicted
classes as columns; average precision is the step-wise area ``sum_n (R_n - R_{n-1}) P_n`` over the
distinct scores, without interpolation. A label with no positive example has no average precision
(NaN here, ``None`` in a report) and is left out of the mean.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

Task = Literal["single_label", "multi_label"]
FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

#: The threshold a multi-label label gets when the data gives no better choice.
DEFAULT_THRESHOLD = 0.5


# --- single-label --------------------------------------------------------------------------------


def accuracy(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Share of ``(N,)`` predictions equal to ``(N,)`` true classes; 0.0 when ``N == 0``."""
    t, p = _int_vector(y_true, "y_true"), _int_vector(y_pred, "y_pred")
    _same_length(t, p)
    return float(np.mean(t == p)) if t.size else 0.0


def confusion_matrix(y_true: ArrayLike, y_pred: ArrayLike, n_classes: int) -> IntArray:
    """``(K, K)`` counts: entry ``[i, j]`` is how many examples of class ``i`` were predicted ``j``."""
    t, p = _int_vector(y_true, "y_true"), _int_vector(y_pred, "y_pred")
    _same_length(t, p)
    for name, v in (("y_true", t), ("y_pred", p)):
        if v.size and (v.min() < 0 or v.max() >= n_classes):
            raise ValueError(f"{name} holds class indices outside [0, {n_classes})")
    flat = np.bincount(t * n_classes + p, minlength=n_classes * n_classes)
    return flat.reshape(n_classes, n_classes).astype(np.int64)


def precision_recall_f1(confusion: ArrayLike) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Per-class ``(K,)`` precision, recall and F1 from a ``(K, K)`` confusion matrix."""
    cm = np.asarray(confusion, dtype=np.float64)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1]:
        raise ValueError(f"confusion must be a square (K, K) matrix, got shape {cm.shape}")
    tp = np.diag(cm)
    return _prf(tp, cm.sum(axis=0), cm.sum(axis=1))


# --- multi-label ---------------------------------------------------------------------------------


def average_precision(y_true: ArrayLike, scores: ArrayLike) -> float:
    """Average precision of one label: ``(N,)`` 0/1 truth, ``(N,)`` scores; NaN if no positive."""
    t = np.asarray(y_true).astype(bool).ravel()
    s = np.asarray(scores, dtype=np.float64).ravel()
    _same_length(t, s)
    positives = int(t.sum())
    if positives == 0:
        return math.nan
    order = np.argsort(-s, kind="mergesort")
    s, t = s[order], t[order]
    last_of_tie = np.r_[np.flatnonzero(np.diff(s)), s.size - 1]
    tps = np.cumsum(t)[last_of_tie]
    predicted = last_of_tie + 1
    precision = tps / predicted
    recall = tps / positives
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def average_precisions(y_true: ArrayLike, probs: ArrayLike) -> FloatArray:
    """``(K,)`` average precision per label of ``(N, K)`` truth and probabilities (NaN: no positive)."""
    t, p = _indicator(y_true, probs)
    return np.array([average_precision(t[:, k], p[:, k]) for k in range(p.shape[1])])


def mean_average_precision(y_true: ArrayLike, probs: ArrayLike) -> float:
    """Mean of the per-label average precisions over labels with a positive; NaN if none has."""
    ap = average_precisions(y_true, probs)
    return float(np.mean(ap[~np.isnan(ap)])) if (~np.isnan(ap)).any() else math.nan


def f1_at_thresholds(
    y_true: ArrayLike, probs: ArrayLike, thresholds: ArrayLike
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Per-label ``(K,)`` precision, recall and F1 when label ``k`` is predicted at
    ``probs[:, k] >= thresholds[k]`` (``thresholds`` ``(K,)``, or ``(N, K)``: one row per
    example)."""
    t, p = _indicator(y_true, probs)
    thr = _thresholds(thresholds, p.shape)
    predicted = p >= thr
    tp = np.sum(predicted & t, axis=0).astype(np.float64)
    return _prf(tp, predicted.sum(axis=0), t.sum(axis=0))


def best_f1_thresholds(
    y_true: ArrayLike, probs: ArrayLike, default: float = DEFAULT_THRESHOLD
) -> FloatArray:
    """``(K,)`` per-label thresholds that maximise F1 on the given examples (use validation data).

    Each threshold sits halfway between the lowest score still predicted positive and the next
    lower score, so it does not hang on one example's exact value. Ties go to the higher threshold
    (fewer positives). A label with no positive example keeps ``default``.
    """
    t, p = _indicator(y_true, probs)
    return np.array([_best_f1_threshold(t[:, k], p[:, k], default) for k in range(p.shape[1])])


def _best_f1_threshold(truth: NDArray[np.bool_], scores: FloatArray, default: float) -> float:
    positives = int(truth.sum())
    if positives == 0:
        return default
    order = np.argsort(-scores, kind="mergesort")
    s, t = scores[order], truth[order]
    last_of_tie = np.r_[np.flatnonzero(np.diff(s)), s.size - 1]
    tps = np.cumsum(t)[last_of_tie]
    predicted = last_of_tie + 1
    f1 = 2 * tps / (predicted + positives)
    best = int(np.argmax(f1))  # the first maximum: the highest threshold
    lowest_in = s[last_of_tie[best]]
    next_score = s[last_of_tie[best] + 1] if last_of_tie[best] + 1 < s.size else 0.0
    return float((lowest_in + next_score) / 2)


# --- one report for training and evaluate ---------------------------------------------------------


def report(
    task: Task,
    labels: Sequence[str],
    y_true: ArrayLike,
    probs: ArrayLike,
    thresholds: dict[str, Any] | None = None,
    cut: ArrayLike | None = None,
) -> dict[str, Any]:
    """The evaluation report of one model on one labeled set, as a JSON-able dict.

    ``labels``: the ``K`` output names in order. Single-label: ``y_true`` ``(N,)`` class indices,
    predictions are the arg-max of ``probs`` (thresholds do not change accuracy). Multi-label:
    ``y_true`` ``(N, K)`` 0/1; ``thresholds`` is the manifest's ``{"default": float, "per_label":
    {label: float}}`` (missing labels take the default, which itself defaults to 0.5); ``cut``,
    when given, ``(N, K)`` per-example thresholds that decide the predictions instead (in a
    cross-validation, each fold's own), while the report still lists ``thresholds``.
    Undefined figures (no positive example) are ``None``.
    """
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] != len(labels):
        raise ValueError(
            f"probs must be (N, {len(labels)}) for {len(labels)} labels, got {p.shape}"
        )
    if task == "single_label":
        return _single_report(list(labels), _int_vector(y_true, "y_true"), p)
    if task == "multi_label":
        thr = label_thresholds(labels, thresholds)
        return _multi_report(list(labels), y_true, p, thr, thr if cut is None else cut)
    raise ValueError(f"task must be 'single_label' or 'multi_label', got {task!r}")


def label_thresholds(labels: Sequence[str], thresholds: dict[str, Any] | None) -> FloatArray:
    """``(K,)`` thresholds from the manifest form ``{"default": ..., "per_label": {...}}``."""
    thresholds = thresholds or {}
    default = float(thresholds.get("default", DEFAULT_THRESHOLD))
    per_label = thresholds.get("per_label") or {}
    return np.array([float(per_label.get(label, default)) for label in labels])


def _single_report(labels: list[str], y_true: IntArray, probs: FloatArray) -> dict[str, Any]:
    if y_true.shape[0] != probs.shape[0]:
        raise ValueError(f"y_true has {y_true.shape[0]} examples but probs has {probs.shape[0]}")
    y_pred = probs.argmax(axis=1) if probs.shape[0] else np.zeros(0, dtype=np.int64)
    cm = confusion_matrix(y_true, y_pred, len(labels))
    precision, recall, f1 = precision_recall_f1(cm)
    support = cm.sum(axis=1)
    present = support > 0
    return {
        "task": "single_label",
        "n": int(y_true.shape[0]),
        "accuracy": accuracy(y_true, y_pred),
        "macro_f1": _mean_or_none(f1[present]),
        "per_label": {
            label: {
                "precision": float(precision[k]),
                "recall": float(recall[k]),
                "f1": float(f1[k]),
                "support": int(support[k]),
            }
            for k, label in enumerate(labels)
        },
        "confusion_matrix": {"labels": labels, "matrix": cm.tolist()},
    }


def _multi_report(
    labels: list[str],
    y_true: ArrayLike,
    probs: FloatArray,
    thresholds: FloatArray,
    cut: ArrayLike,
) -> dict[str, Any]:
    t, p = _indicator(y_true, probs)
    ap = average_precisions(t, p)
    precision, recall, f1 = f1_at_thresholds(t, p, cut)
    support = t.sum(axis=0)
    predicted = p >= _thresholds(cut, p.shape)
    present = support > 0
    tp = float(np.sum(predicted & t))
    micro = 2 * tp / (predicted.sum() + t.sum()) if predicted.sum() + t.sum() else 0.0
    return {
        "task": "multi_label",
        "n": int(t.shape[0]),
        "map": _mean_or_none(ap[present]),
        "macro_f1": _mean_or_none(f1[present]),
        "micro_f1": float(micro),
        "subset_accuracy": float(np.mean(np.all(predicted == t, axis=1))) if t.shape[0] else 0.0,
        "per_label": {
            label: {
                "ap": None if math.isnan(ap[k]) else float(ap[k]),
                "precision": float(precision[k]),
                "recall": float(recall[k]),
                "f1": float(f1[k]),
                "threshold": float(thresholds[k]),
                "support": int(support[k]),
            }
            for k, label in enumerate(labels)
        },
    }


# --- helpers -------------------------------------------------------------------------------------


def _prf(
    tp: FloatArray, predicted: ArrayLike, actual: ArrayLike
) -> tuple[FloatArray, FloatArray, FloatArray]:
    pred = np.asarray(predicted, dtype=np.float64)
    act = np.asarray(actual, dtype=np.float64)
    precision = _ratio(tp, pred)
    recall = _ratio(tp, act)
    f1 = _ratio(2 * tp, pred + act)
    return precision, recall, f1


def _ratio(num: FloatArray, den: FloatArray) -> FloatArray:
    out = np.zeros_like(num, dtype=np.float64)
    np.divide(num, den, out=out, where=den > 0)
    return out


def _mean_or_none(values: FloatArray) -> float | None:
    return float(np.mean(values)) if values.size else None


def _int_vector(values: ArrayLike, name: str) -> IntArray:
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a (N,) vector of class indices, got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"{name} must hold integer class indices, got {arr.dtype}")
    return arr.astype(np.int64)


def _indicator(y_true: ArrayLike, probs: ArrayLike) -> tuple[NDArray[np.bool_], FloatArray]:
    t = np.asarray(y_true)
    p = np.asarray(probs, dtype=np.float64)
    if t.ndim != 2 or t.shape != p.shape:
        raise ValueError(
            f"y_true must be an (N, K) 0/1 matrix shaped like probs {p.shape}, got {t.shape}"
        )
    if t.size and not np.isin(t, (0, 1)).all():
        raise ValueError("y_true must hold only 0 and 1 (or booleans)")
    return t.astype(bool), p


def _thresholds(thresholds: ArrayLike, shape: tuple[int, ...]) -> FloatArray:
    """``thresholds`` checked against probabilities of ``shape`` ``(N, K)``: ``(K,)`` or
    ``(N, K)``."""
    thr = np.asarray(thresholds, dtype=np.float64)
    if thr.shape not in (shape[1:], shape):
        raise ValueError(f"thresholds must be ({shape[1]},) or {shape}, got shape {thr.shape}")
    return thr


def _same_length(a: NDArray[Any], b: NDArray[Any]) -> None:
    if a.shape[0] != b.shape[0]:
        raise ValueError(f"lengths differ: {a.shape[0]} and {b.shape[0]}")
