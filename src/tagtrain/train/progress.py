"""Progress events of a training run, and the cancel check between batches.

The trainer reports through a :class:`Progress`: each call to :meth:`Progress.step` sends one
:class:`ProgressEvent` (with an ETA for the current phase, from its pace so far) and then asks
``should_stop()``; a yes raises :class:`~tagtrain.errors.Cancelled` right there, so a cancel takes
effect within one batch.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from tagtrain.errors import Cancelled


@dataclass(frozen=True)
class ProgressEvent:
    """One step of one phase: ``phase`` is ``prepare``, ``features``, ``head``, ``finetune`` or
    ``evaluate``; ``step`` of ``total``; ``loss``/``metric`` (validation) where known."""

    phase: str
    step: int
    total: int
    loss: float | None = None
    metric: float | None = None
    eta_s: float | None = None
    message: str = ""


class Progress:
    def __init__(
        self, send: Callable[[ProgressEvent], None], should_stop: Callable[[], bool]
    ) -> None:
        self._send = send
        self._should_stop = should_stop
        self._phase = ""
        self._phase_start = time.monotonic()
        self._first_step = 0

    def step(
        self,
        phase: str,
        step: int,
        total: int,
        *,
        loss: float | None = None,
        metric: float | None = None,
        message: str = "",
    ) -> None:
        """Report ``step`` of ``total`` in ``phase``; raise Cancelled if a stop was asked for."""
        now = time.monotonic()
        if phase != self._phase:
            self._phase, self._phase_start, self._first_step = phase, now, step
        done = step - self._first_step
        eta = None
        if done > 0 and total >= step:
            eta = (now - self._phase_start) / done * (total - step)
        self._send(ProgressEvent(phase, step, total, loss, metric, eta, message))
        self.check()

    def check(self) -> None:
        """Raise :class:`Cancelled` if the job was asked to stop."""
        if self._should_stop():
            raise Cancelled("training was canceled")
