"""One result row: a figure, the bar it is held to, and the figure of a peer run."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

Op = Literal[">=", "<="]


@dataclass(frozen=True)
class Bar:
    """A bar from DESIGN.md: the figure must be ``op`` ``value`` (in the row's unit)."""

    op: Op
    value: float

    def met(self, figure: float) -> bool:
        return figure >= self.value if self.op == ">=" else figure <= self.value

    def __str__(self) -> str:
        return f"{'≥' if self.op == '>=' else '≤'} {number(self.value)}"


@dataclass(frozen=True)
class Row:
    """One figure. ``ratio`` is figure ÷ peer: for a rate, the share of the peer's speed tagtrain
    reaches; for a latency, how many times slower than the peer it is."""

    benchmark: str
    figure: float | None
    unit: str
    bar: Bar | None = None
    peer: float | None = None
    peer_is: str = ""
    details: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    @property
    def ratio(self) -> float | None:
        if self.figure is None or not self.peer:
            return None
        return self.figure / self.peer

    @property
    def ok(self) -> bool | None:
        """True/False against the bar; None for an informational row (no bar)."""
        if self.error is not None or self.figure is None or math.isnan(self.figure):
            return False
        return None if self.bar is None else self.bar.met(self.figure)

    def as_json(self, group: str) -> dict[str, Any]:
        return {
            "group": group,
            "benchmark": self.benchmark,
            "figure": self.figure,
            "unit": self.unit,
            "bar": None if self.bar is None else {"op": self.bar.op, "value": self.bar.value},
            "peer": self.peer,
            "peer_is": self.peer_is,
            "ratio": self.ratio,
            "ok": self.ok,
            "details": self.details,
            "error": self.error,
        }


def failed(benchmark: str, error: BaseException) -> Row:
    """The row standing for a benchmark that raised instead of measuring."""
    return Row(benchmark, None, "", error=f"{type(error).__name__}: {error}")


def number(x: float) -> str:
    """A figure with about three significant digits, thousands separated; whole numbers bare."""
    if float(x).is_integer() or abs(x) >= 1000:
        return f"{x:,.0f}"
    if abs(x) >= 10:
        return f"{x:.1f}"
    if abs(x) >= 1:
        return f"{x:.2f}"
    return f"{x:.3f}"
