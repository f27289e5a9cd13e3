"""Dataset health: what blocks training and what a good labeler should be warned about.

The same rules serve the training form (errors refuse a job), the job's warnings and the dataset
page, so a person sees one story everywhere.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

Task = Literal["single_label", "multi_label"]

MIN_LABELS = 2
MIN_PER_LABEL = 10
IMBALANCE_RATIO = 3.0
MIN_LABELED_FRACTION = 0.8


@dataclass(frozen=True)
class Health:
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def check(
    *,
    task: Task,
    labels: Sequence[str],
    counts: Mapping[str, int],
    total: int,
    negatives: int,
) -> Health:
    """``counts``: images per label; ``total``: images in the dataset; ``negatives``: images
    carrying none of ``labels``. Errors block training; warnings do not."""
    errors: list[str] = []
    warnings: list[str] = []
    missing = [lb for lb in labels if counts.get(lb, 0) == 0]
    if missing:
        errors.append(f"no image carries {_names(missing)}; tag some or leave them out")
    if len(labels) < MIN_LABELS:
        errors.append(f"a classifier needs at least {MIN_LABELS} labels; got {len(labels)}")
    few = [lb for lb in labels if 0 < counts.get(lb, 0) < MIN_PER_LABEL]
    if few:
        errors.append(f"{_names(few)} must have at least {MIN_PER_LABEL} images each")
    present = [counts[lb] for lb in labels if counts.get(lb, 0) > 0]
    if present and max(present) > IMBALANCE_RATIO * min(present):
        warnings.append(
            f"labels are imbalanced: {max(present)} vs {min(present)} images "
            f"(more than {IMBALANCE_RATIO:g}x apart); add images to the small ones"
        )
    if total and (total - negatives) / total < MIN_LABELED_FRACTION:
        warnings.append(
            f"only {total - negatives} of {total} images carry a label; "
            "label more, or they train as unknown/negative"
        )
    if task == "multi_label" and total and negatives == 0:
        warnings.append("no negative examples (images with none of the labels) for multi-label")
    return Health(errors, warnings)


def _names(labels: Sequence[str]) -> str:
    return ", ".join(repr(lb) for lb in labels)
