"""The linear head on cached features: a regularised softmax or sigmoid regression, in seconds.

The head is fitted to the optimum of a convex objective with full-batch L-BFGS (in float64, which
makes it exact and repeatable), like a logistic-regression probe, but with what a probe lacks:

- the loss: softmax cross-entropy with label smoothing (single-label) or per-label sigmoid binary
  cross-entropy (multi-label);
- sample weights, so that augmented views count less than the plain view serving sees;
- the L2 strength chosen on the validation split from a small grid (``C`` as in scikit-learn:
  the penalty is ``||W||^2 / (2 C sum(w))`` beside the weighted mean loss), then a refit on
  train + validation with the chosen strength.

Shapes: ``x`` ``(M, D)`` features; single-label ``y`` ``(M,)`` class indices, multi-label ``y``
``(M, K)`` 0/1; ``w`` ``(M,)`` sample weights.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor, nn
from torch.nn import functional as F  # noqa: N812 (torch's usual alias)

from tagtrain.package import metrics

Task = Literal["single_label", "multi_label"]
Array = NDArray[Any]

ROUNDS = 12  # L-BFGS rounds (the "epochs" of the head's curve) at most
ITERS_PER_ROUND = 25
DEFAULT_C = 10.0  # for unit-norm feature blocks (see features.py)
C_GRID = (3.0, 10.0, 30.0, 100.0)


@dataclass
class HeadFit:
    """A fitted head and how it went: ``curve`` has one entry per round."""

    head: nn.Linear
    c: float
    val_loss: float | None = None
    val_metric: float | None = None
    curve: list[dict[str, Any]] = field(default_factory=list)


def loss_fn(task: Task, label_smoothing: float) -> Callable[[Tensor, Tensor], Tensor]:
    """Per-example loss of logits ``(M, K)`` against targets (no reduction)."""
    if task == "single_label":

        def single(logits: Tensor, y: Tensor) -> Tensor:
            return F.cross_entropy(logits, y, label_smoothing=label_smoothing, reduction="none")

        return single

    def multi(logits: Tensor, y: Tensor) -> Tensor:
        return F.binary_cross_entropy_with_logits(logits, y, reduction="none").mean(dim=1)

    return multi


def val_metric(task: Task, y: Array, probs: Array) -> float:
    """The validation figure selection maximises: accuracy (single) or mAP (multi)."""
    if task == "single_label":
        return metrics.accuracy(y, probs.argmax(axis=1))
    value = metrics.mean_average_precision(y, probs)
    return 0.0 if math.isnan(value) else value


def probabilities(task: Task, logits: Tensor) -> Tensor:
    return torch.sigmoid(logits) if task == "multi_label" else torch.softmax(logits, dim=1)


def fit_head(
    x: Array,
    y: Array,
    w: Array,
    *,
    task: Task,
    n_out: int,
    c: float,
    label_smoothing: float,
    val: tuple[Array, Array] | None = None,
    init: nn.Linear | None = None,
    on_round: Callable[[int, float], None] | None = None,
) -> HeadFit:
    """Fit one head to the optimum (or ``ROUNDS * ITERS_PER_ROUND`` L-BFGS iterations), from
    zeros or from ``init`` (a warm start: the neighbouring ``C``'s optimum is close)."""
    with single_thread():
        return _fit_head(x, y, w, task, n_out, c, label_smoothing, val, init, on_round)


@contextmanager
def single_thread() -> Iterator[None]:
    """One intra-op thread: for these small matrices, thread hand-offs cost more than they save
    (several times more on a busy machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _fit_head(
    x: Array,
    y: Array,
    w: Array,
    task: Task,
    n_out: int,
    c: float,
    label_smoothing: float,
    val: tuple[Array, Array] | None,
    init: nn.Linear | None,
    on_round: Callable[[int, float], None] | None,
) -> HeadFit:
    xt = torch.from_numpy(np.asarray(x, dtype=np.float64))
    yt = _targets(task, y)
    wt = torch.from_numpy(np.asarray(w, dtype=np.float64))
    per_example = loss_fn(task, label_smoothing)
    head = nn.Linear(xt.shape[1], n_out).double()
    with torch.no_grad():
        if init is None:
            head.weight.zero_()
            head.bias.zero_()
        else:
            head.weight.copy_(init.weight)
            head.bias.copy_(init.bias)
    penalty = 0.5 / (c * float(wt.sum()))
    opt = torch.optim.LBFGS(
        head.parameters(),
        lr=1.0,
        max_iter=ITERS_PER_ROUND,
        history_size=20,
        tolerance_grad=1e-7,
        tolerance_change=1e-10,
        line_search_fn="strong_wolfe",
    )

    def objective() -> Tensor:
        opt.zero_grad()
        loss = (per_example(head(xt), yt) * wt).sum() / wt.sum()
        loss = loss + penalty * head.weight.pow(2).sum()
        loss.backward()  # type: ignore[no-untyped-call]
        return loss

    fit = HeadFit(head, c)
    previous = math.inf
    for round_ in range(1, ROUNDS + 1):
        train_loss = float(opt.step(objective).detach())  # type: ignore[no-untyped-call]
        fit.curve.append({"phase": "head", "epoch": round_, "train_loss": train_loss})
        if val is not None:
            fit.val_loss, fit.val_metric = evaluate(head, val, task)
            fit.curve[-1] |= {"val_loss": fit.val_loss, "val_metric": fit.val_metric}
        if on_round is not None:
            on_round(round_, train_loss)
        if previous - train_loss < 1e-7 * max(1.0, abs(train_loss)):
            break
        previous = train_loss
    fit.head = _as_float32(head)
    return fit


def evaluate(head: nn.Linear, data: tuple[Array, Array], task: Task) -> tuple[float, float]:
    """(mean loss, validation metric) of a head on ``(x, y)``; the loss without smoothing, so
    that it compares across models trained with different smoothing."""
    x, y = data
    with torch.no_grad():
        logits = head(torch.from_numpy(np.asarray(x)).to(head.weight.dtype))
        loss = float(loss_fn(task, 0.0)(logits, _targets(task, y, logits.dtype)).mean())
        probs = probabilities(task, logits).double().numpy()
    return loss, val_metric(task, y, probs)


def select_head(
    train: tuple[Array, Array, Array],
    val: tuple[Array, Array],
    *,
    task: Task,
    n_out: int,
    label_smoothing: float,
    grid: Sequence[float] = C_GRID,
    on_fit: Callable[[int, int, HeadFit], None] | None = None,
) -> HeadFit:
    """Fit one head per ``C`` in ``grid`` on ``train`` and return the best on ``val`` (highest
    metric, then lowest loss, then the stronger penalty). Each fit starts from the previous
    (smaller ``C``) optimum."""
    best: HeadFit | None = None
    previous: nn.Linear | None = None
    for i, c in enumerate(sorted(grid)):
        fit = fit_head(
            *train,
            task=task,
            n_out=n_out,
            c=c,
            label_smoothing=label_smoothing,
            val=val,
            init=previous,
        )
        previous = fit.head
        if on_fit is not None:
            on_fit(i + 1, len(grid), fit)
        if best is None or _better(fit, best):
            best = fit
    if best is None:
        raise ValueError("grid is empty")
    return best


@dataclass(frozen=True)
class HeadSettings:
    """One training's head: its task, output labels, strength grid and label smoothing, so
    that every fit of it (held out, each fold, the shipped one) is made the same way."""

    task: Task
    classes: tuple[str, ...]
    grid: tuple[float, ...]
    label_smoothing: float

    def select(
        self,
        train: tuple[Array, Array, Array],
        val: tuple[Array, Array],
        on_fit: Callable[[int, int, HeadFit], None] | None = None,
    ) -> HeadFit:
        """:func:`select_head` over the grid."""
        return select_head(
            train,
            val,
            task=self.task,
            n_out=len(self.classes),
            label_smoothing=self.label_smoothing,
            grid=self.grid,
            on_fit=on_fit,
        )

    def fit(
        self, rows: tuple[Array, Array, Array], c: float, init: HeadFit | None = None
    ) -> HeadFit:
        """:func:`fit_head` at strength ``c``, warm-started from ``init`` if given."""
        return fit_head(
            *rows,
            task=self.task,
            n_out=len(self.classes),
            c=c,
            label_smoothing=self.label_smoothing,
            init=None if init is None else init.head,
        )


def _better(a: HeadFit, b: HeadFit) -> bool:
    am, bm = a.val_metric or 0.0, b.val_metric or 0.0
    if not math.isclose(am, bm, abs_tol=1e-12):
        return am > bm
    return (a.val_loss or 0.0) < (b.val_loss or 0.0) - 1e-12


def _targets(task: Task, y: Array, dtype: torch.dtype = torch.float64) -> Tensor:
    if task == "single_label":
        return torch.from_numpy(np.asarray(y, dtype=np.int64))
    return torch.from_numpy(np.asarray(y)).to(dtype)


def _as_float32(head: nn.Linear) -> nn.Linear:
    out = nn.Linear(head.in_features, head.out_features)
    with torch.no_grad():
        out.weight.copy_(head.weight.float())
        out.bias.copy_(head.bias.float())
    return out
