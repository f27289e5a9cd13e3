"""package.metrics against scikit-learn on random and edge-case data, and the report's shape."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from sklearn import metrics as sk

from tagtrain.package import metrics as m


@pytest.fixture(params=range(5))
def rng(request: pytest.FixtureRequest) -> np.random.Generator:
    return np.random.default_rng(request.param)


def _single(rng: np.random.Generator, n: int = 80, k: int = 5) -> tuple[np.ndarray, np.ndarray]:
    y = rng.integers(0, k, n)
    logits = rng.normal(size=(n, k)) + 1.5 * np.eye(k)[y]
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return y, probs


def _multi(rng: np.random.Generator, n: int = 90, k: int = 4) -> tuple[np.ndarray, np.ndarray]:
    y = (rng.random((n, k)) < [0.5, 0.3, 0.1, 0.05][:k]).astype(int)
    scores = 1 / (1 + np.exp(-(rng.normal(size=(n, k)) + 1.2 * (2 * y - 1))))
    scores = np.round(scores, 2)  # ties, which AP has to handle like scikit-learn
    return y, scores


def test_single_label_metrics_match_sklearn(rng: np.random.Generator) -> None:
    y, probs = _single(rng)
    pred = probs.argmax(axis=1)
    assert m.accuracy(y, pred) == pytest.approx(sk.accuracy_score(y, pred))
    cm = m.confusion_matrix(y, pred, 5)
    assert np.array_equal(cm, sk.confusion_matrix(y, pred, labels=range(5)))
    precision, recall, f1 = m.precision_recall_f1(cm)
    want = sk.precision_recall_fscore_support(y, pred, labels=range(5), zero_division=0)
    np.testing.assert_allclose(precision, want[0])
    np.testing.assert_allclose(recall, want[1])
    np.testing.assert_allclose(f1, want[2])


def test_a_class_never_predicted_or_absent_scores_zero() -> None:
    y = np.array([0, 0, 1, 1])
    pred = np.array([0, 0, 0, 0])
    cm = m.confusion_matrix(y, pred, 3)  # class 2 absent from both
    precision, recall, f1 = m.precision_recall_f1(cm)
    want = sk.precision_recall_fscore_support(y, pred, labels=range(3), zero_division=0)
    np.testing.assert_allclose(np.stack([precision, recall, f1]), np.stack(want[:3]))
    assert m.accuracy([], []) == 0.0


def test_multi_label_metrics_match_sklearn(rng: np.random.Generator) -> None:
    y, scores = _multi(rng)
    for k in range(y.shape[1]):
        if y[:, k].any():
            assert m.average_precision(y[:, k], scores[:, k]) == pytest.approx(
                sk.average_precision_score(y[:, k], scores[:, k])
            )
    present = y.any(axis=0)
    assert m.mean_average_precision(y, scores) == pytest.approx(
        sk.average_precision_score(y[:, present], scores[:, present], average="macro")
    )
    thresholds = np.array([0.5, 0.4, 0.6, 0.3])
    precision, recall, f1 = m.f1_at_thresholds(y, scores, thresholds)
    pred = (scores >= thresholds).astype(int)
    want = sk.precision_recall_fscore_support(y, pred, average=None, zero_division=0)
    np.testing.assert_allclose(precision, want[0])
    np.testing.assert_allclose(recall, want[1])
    np.testing.assert_allclose(f1, want[2])


def test_best_f1_thresholds_reach_the_best_f1_sklearn_finds(rng: np.random.Generator) -> None:
    y, scores = _multi(rng)
    thresholds = m.best_f1_thresholds(y, scores)
    _, _, f1 = m.f1_at_thresholds(y, scores, thresholds)
    for k in range(y.shape[1]):
        if not y[:, k].any():
            assert thresholds[k] == m.DEFAULT_THRESHOLD
            continue
        precision, recall, _ = sk.precision_recall_curve(y[:, k], scores[:, k])
        best = np.max(
            np.where(
                precision + recall > 0, 2 * precision * recall / (precision + recall + 1e-300), 0
            )
        )
        assert f1[k] == pytest.approx(best)
        assert 0 <= thresholds[k] <= 1


def test_best_f1_threshold_sits_between_scores() -> None:
    y = np.array([[1], [1], [0], [0]])
    scores = np.array([[0.9], [0.7], [0.3], [0.1]])
    assert m.best_f1_thresholds(y, scores)[0] == pytest.approx(0.5)


def test_ap_of_a_label_without_positives_is_nan() -> None:
    assert math.isnan(m.average_precision([0, 0, 0], [0.1, 0.5, 0.9]))
    y = np.array([[1, 0], [0, 0], [1, 0]])
    scores = np.array([[0.9, 0.2], [0.1, 0.3], [0.8, 0.1]])
    assert m.mean_average_precision(y, scores) == pytest.approx(1.0)


def test_single_label_report_is_json_and_complete() -> None:
    y = np.array([0, 1, 2, 2, 1])
    probs = np.array(
        [[0.8, 0.1, 0.1], [0.2, 0.7, 0.1], [0.1, 0.2, 0.7], [0.5, 0.3, 0.2], [0.3, 0.6, 0.1]]
    )
    rep = m.report("single_label", ["a", "b", "UNKNOWN"], y, probs, None)
    json.dumps(rep, allow_nan=False)
    assert rep["accuracy"] == pytest.approx(0.8)
    assert rep["confusion_matrix"]["matrix"] == [[1, 0, 0], [0, 2, 0], [1, 0, 1]]
    assert rep["per_label"]["UNKNOWN"] == {
        "precision": 1.0,
        "recall": 0.5,
        "f1": 2 / 3,
        "support": 2,
    }
    assert rep["macro_f1"] == pytest.approx(sk.f1_score(y, probs.argmax(axis=1), average="macro"))


def test_multi_label_report_is_json_and_uses_per_label_thresholds(rng: np.random.Generator) -> None:
    y, scores = _multi(rng, k=3)
    y[:, 2] = 0  # a label with no positive on this set
    thresholds = {"default": 0.5, "per_label": {"cat": 0.3}}
    rep = m.report("multi_label", ["cat", "dog", "bird"], y, scores, thresholds)
    json.dumps(rep, allow_nan=False)
    assert rep["per_label"]["cat"]["threshold"] == 0.3
    assert rep["per_label"]["dog"]["threshold"] == 0.5
    assert rep["per_label"]["bird"]["ap"] is None
    assert rep["map"] == pytest.approx(
        sk.average_precision_score(y[:, :2], scores[:, :2], average="macro")
    )
    want_f1 = sk.f1_score(y[:, 0], scores[:, 0] >= 0.3, zero_division=0)
    assert rep["per_label"]["cat"]["f1"] == pytest.approx(want_f1)
    pred = scores >= np.array([0.3, 0.5, 0.5])
    assert rep["micro_f1"] == pytest.approx(sk.f1_score(y, pred, average="micro", zero_division=0))
    assert rep["subset_accuracy"] == pytest.approx(sk.accuracy_score(y, pred))


def test_shapes_are_checked_with_clear_messages() -> None:
    with pytest.raises(ValueError, match=r"probs must be \(N, 2\)"):
        m.report("single_label", ["a", "b"], [0], [[0.2, 0.3, 0.5]], None)
    with pytest.raises(ValueError, match="integer class indices"):
        m.accuracy([0.5], [1])
    with pytest.raises(ValueError, match="only 0 and 1"):
        m.average_precisions([[2]], [[0.5]])
    with pytest.raises(ValueError, match="outside"):
        m.confusion_matrix([3], [0], 2)
    with pytest.raises(ValueError, match="task must be"):
        m.report("regression", ["a"], [0], [[1.0]], None)  # type: ignore[arg-type]


def test_metrics_import_no_torch_or_sklearn() -> None:
    import subprocess
    import sys

    code = (
        "import sys, tagtrain.package.metrics; "
        "print(sorted(m for m in ('torch', 'sklearn') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_a_multi_label_report_can_cut_each_example_at_its_own_thresholds(
    rng: np.random.Generator,
) -> None:
    """Cross-validation cuts each fold at its own thresholds: the report's F1 and subset
    accuracy follow ``cut``, while the listed thresholds stay the shipped ones."""
    y, scores = _multi(rng)
    labels = ["a", "b", "c", "d"]
    shipped = {"default": 0.5, "per_label": dict(zip(labels, [0.5, 0.4, 0.6, 0.3], strict=True))}
    cut = np.where(np.arange(len(y))[:, None] < 45, 0.2, 0.7) * np.ones((1, 4))
    report = m.report("multi_label", labels, y, scores, shipped, cut)
    pred = (scores >= cut).astype(int)
    want = sk.precision_recall_fscore_support(y, pred, average=None, zero_division=0)
    got = [report["per_label"][lb]["f1"] for lb in labels]
    np.testing.assert_allclose(got, want[2])
    assert report["subset_accuracy"] == pytest.approx(float(np.mean(np.all(pred == y, axis=1))))
    assert [report["per_label"][lb]["threshold"] for lb in labels] == [0.5, 0.4, 0.6, 0.3]
    assert report != m.report("multi_label", labels, y, scores, shipped)
    with pytest.raises(ValueError, match=r"thresholds must be \(4,\) or \(90, 4\)"):
        m.report("multi_label", labels, y, scores, shipped, cut[:10])
