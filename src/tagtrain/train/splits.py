"""Train / validation / test splits that do not leak: stratified by label, whole groups at a time.

One algorithm serves both tasks: iterative stratification (Sechidis, Tsoumakas & Vlahavas, "On the
stratification of multi-label data", ECML PKDD 2011), run over *groups* of images instead of single
images so that near-duplicates and bursts of frames (see :mod:`tagtrain.train.groups`) never
straddle two splits. Single-label data is its one-hot special case, where it reduces to ordinary
per-class proportional stratification.

The algorithm keeps, for every split and label, how many more examples of that label the split
still wants. It repeatedly takes the label with the fewest examples still unassigned (rare labels
first, since they are the hardest to spread) and hands each unassigned group carrying it to the
split that wants that label most (ties: the split that wants the most examples overall, then the
seeded random generator). Groups with no label at all go to the split that wants the most
examples. The result depends only on the label matrix, the groups, the fractions and the seed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from tagtrain.errors import BadInput

SPLITS = ("train", "val", "test")
TRAIN, VAL, TEST = 0, 1, 2


@dataclass(frozen=True)
class Fractions:
    """Shares of the examples wanted in validation and test; train gets the rest."""

    val: float = 0.15
    test: float = 0.15

    def __post_init__(self) -> None:
        if not (0 < self.val < 1 and 0 < self.test < 1 and self.val + self.test < 1):
            raise ValueError(
                f"val and test fractions must be in (0, 1) and leave room for training, "
                f"got val={self.val}, test={self.test}"
            )

    def as_array(self) -> NDArray[np.float64]:
        return np.array([1 - self.val - self.test, self.val, self.test])


def stratified_split(
    labels: NDArray[np.int64],
    groups: NDArray[np.int64],
    fractions: Fractions,
    seed: int,
) -> NDArray[np.int64]:
    """Assign each example to a split.

    ``labels``: ``(N, C)`` 0/1 indicator (one-hot for single-label). ``groups``: ``(N,)`` group
    index of each example (examples sharing one stay together). Returns ``(N,)`` split indices:
    0 train, 1 validation, 2 test.
    """
    return _stratify(labels, groups, fractions.as_array(), seed)


def stratified_folds(
    labels: NDArray[np.int64], groups: NDArray[np.int64], k: int, seed: int
) -> NDArray[np.int64]:
    """Assign each example to one of ``k`` equal folds for cross-validation, by the same
    algorithm as :func:`stratified_split` (labels as there; groups never straddle two folds).
    Returns ``(N,)`` fold indices ``0..k-1``."""
    if k < 2:
        raise ValueError(f"cross-validation needs at least 2 folds, got {k}")
    return _stratify(labels, groups, np.full(k, 1 / k), seed)


def _stratify(
    labels: NDArray[np.int64], groups: NDArray[np.int64], r: NDArray[np.float64], seed: int
) -> NDArray[np.int64]:
    """The algorithm of the module docstring: ``r`` holds the share each part wants."""
    y = np.asarray(labels, dtype=np.int64)
    g = np.asarray(groups, dtype=np.int64)
    if y.ndim != 2 or g.shape != (y.shape[0],):
        raise ValueError(f"labels must be (N, C) and groups (N,), got {y.shape} and {g.shape}")
    rng = np.random.default_rng(seed)
    _, group_of = np.unique(g, return_inverse=True)
    n_groups = int(group_of.max()) + 1 if group_of.size else 0
    counts = np.zeros((n_groups, y.shape[1]), dtype=np.int64)  # examples per group and label
    np.add.at(counts, group_of, y)
    sizes = np.bincount(group_of, minlength=n_groups)

    want_label = r[:, None] * y.sum(axis=0)[None, :].astype(np.float64)  # (parts, C)
    want_total = r * y.shape[0]  # (parts,)
    split_of_group = np.full(n_groups, -1, dtype=np.int64)

    def assign(group: int, split: int) -> None:
        split_of_group[group] = split
        want_label[split] -= counts[group]
        want_total[split] -= sizes[group]

    def best_split(scores: NDArray[np.float64]) -> int:
        """The split with the highest score, ties by overall want, then at random."""
        top = np.flatnonzero(scores == scores.max())
        if top.size > 1:
            top = top[want_total[top] == want_total[top].max()]
        return int(top[0] if top.size == 1 else rng.choice(top))

    while True:
        open_groups = split_of_group < 0
        remaining = counts[open_groups].sum(axis=0)
        if not remaining.any():
            break
        fewest = remaining[remaining > 0].min()
        label = int(rng.choice(np.flatnonzero(remaining == fewest)))
        carriers = np.flatnonzero(open_groups & (counts[:, label] > 0))
        for group in rng.permutation(carriers):
            assign(int(group), best_split(want_label[:, label]))
    for group in rng.permutation(np.flatnonzero(split_of_group < 0)):
        assign(int(group), best_split(want_total))
    return split_of_group[group_of] if group_of.size else np.zeros(0, dtype=np.int64)


def require_spread(classes: tuple[str, ...], parts: list[NDArray[np.int64]], where: str) -> None:
    """Raise :class:`BadInput` naming the labels missing from any of ``parts`` (label
    matrices). Rare above the minimums: it takes a group of near-duplicates as large as a
    label's share of a part."""
    empty = sorted({classes[k] for part in parts for k in np.flatnonzero(~part.any(axis=0))})
    if empty:
        raise BadInput(
            f"could not spread {', '.join(empty)} over {where}; "
            "add more images that are not near-duplicates of each other"
        )
