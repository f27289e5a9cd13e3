"""The version report as the pages show it: plain functions of the report JSON that
:func:`tagtrain.package.metrics.report` writes (headline figures, confusion-matrix cells, the test
images a model got wrong), kept apart from the routes so the tests can check them directly."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

#: Report keys shown as headline figures, in order, with their names on the page.
FIGURES = (
    ("accuracy", "Accuracy"),
    ("map", "mAP"),
    ("macro_f1", "Macro F1"),
    ("micro_f1", "Micro F1"),
    ("subset_accuracy", "Exact match"),
)


@dataclass(frozen=True)
class Figure:
    key: str
    name: str
    value: float


@dataclass(frozen=True)
class Cell:
    """One confusion-matrix cell: ``share`` of its true class's row, 0..1."""

    count: int
    share: float
    correct: bool

    @property
    def style(self) -> str:
        """A background whose strength follows the share: blue when right, red when wrong."""
        if self.count == 0:
            return ""
        rgb = "47 111 237" if self.correct else "217 45 32"
        alpha = 0.12 + 0.78 * self.share
        ink = "color: #fff; " if alpha > 0.55 else ""
        return f"{ink}background: rgb({rgb} / {alpha:.2f})"


@dataclass(frozen=True)
class Wrong:
    """A test image the model got wrong."""

    image_id: int
    true: str
    predicted: str
    confidence: float | None


def figures(metrics: dict[str, Any]) -> list[Figure]:
    """The headline figures present in a report, in :data:`FIGURES` order."""
    return [
        Figure(key, name, float(metrics[key]))
        for key, name in FIGURES
        if isinstance(metrics.get(key), int | float)
    ]


def headline(metrics: dict[str, Any]) -> Figure | None:
    """The one figure to list a version by: accuracy (single-label) or mAP (multi-label)."""
    found = figures(metrics)
    return found[0] if found else None


def confusion_rows(metrics: dict[str, Any]) -> list[tuple[str, list[Cell], int]]:
    """Rows of the confusion matrix (true class, its cells, its total); empty if there is none."""
    cm = metrics.get("confusion_matrix") or {}
    labels, matrix = cm.get("labels") or [], cm.get("matrix") or []
    rows = []
    for i, (label, counts) in enumerate(zip(labels, matrix, strict=False)):
        total = sum(counts)
        cells = [Cell(n, n / total if total else 0.0, i == j) for j, n in enumerate(counts)]
        rows.append((label, cells, total))
    return rows


def _names(value: Any, labels: list[str]) -> tuple[str, ...]:
    """A true or predicted value as label names: a name, an index, or a list of either."""
    if isinstance(value, list | tuple):
        return tuple(sorted(n for v in value for n in _names(v, labels)))
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < len(labels):
        return (labels[value],)
    return () if value is None else (str(value),)


def _confidence(probabilities: Any, predicted: tuple[str, ...], labels: list[str]) -> float | None:
    if len(predicted) != 1:
        return None
    name = predicted[0]
    if isinstance(probabilities, dict):
        p = probabilities.get(name)
    elif (
        isinstance(probabilities, list)
        and name in labels
        and labels.index(name) < len(probabilities)
    ):
        p = probabilities[labels.index(name)]
    else:
        p = None
    return float(p) if isinstance(p, int | float) else None


def wrong_predictions(report: dict[str, Any], labels: list[str]) -> list[Wrong]:
    """The test images whose prediction differs from the truth, least confident mistakes last."""
    out = []
    for pred in report.get("test_predictions") or []:
        if not isinstance(pred, dict) or not isinstance(pred.get("image_id"), int):
            continue
        true, predicted = _names(pred.get("true"), labels), _names(pred.get("predicted"), labels)
        if true == predicted:
            continue
        confidence = _confidence(pred.get("probabilities"), predicted, labels)
        out.append(
            Wrong(
                pred["image_id"],
                ", ".join(true) or "none",
                ", ".join(predicted) or "none",
                confidence,
            )
        )
    out.sort(key=lambda w: -(w.confidence or 0.0))
    return out
