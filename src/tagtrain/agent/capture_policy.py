"""Which camera frames are kept for the Data tab (see ``CaptureRule``). The point is to close the
loop: keep the frames the model is unsure about (top confidence in a band), or the ones showing
labels of interest, at a steady trickle, so they arrive ready to label and retrain on."""

from __future__ import annotations

import math
from collections import deque

import numpy as np
from numpy.typing import NDArray

from tagtrain.machine_config import CaptureRule

WINDOW_S = 60.0


class CapturePolicy:
    def __init__(self, rule: CaptureRule) -> None:
        self.rule = rule
        self._last = -math.inf
        self._kept: deque[float] = deque()

    def wants(self, probs: NDArray[np.float32] | None, labels: list[str], now: float) -> bool:
        """Whether to keep the frame with these probabilities (None: no model yet, so only a
        rule with no band and no label set keeps it); ``now`` is time.monotonic()."""
        rule = self.rule
        if not rule.enabled or now - self._last < 1.0 / rule.frequency_hz:
            return False
        if not self._matches(probs, labels):
            return False
        while self._kept and now - self._kept[0] >= WINDOW_S:
            self._kept.popleft()
        if len(self._kept) >= rule.max_per_minute:
            return False
        self._kept.append(now)
        self._last = now
        return True

    def _matches(self, probs: NDArray[np.float32] | None, labels: list[str]) -> bool:
        rule = self.rule
        filtered = rule.labels or rule.min_confidence > 0.0 or rule.max_confidence < 1.0
        if probs is None or probs.size == 0:
            return not filtered
        best = int(np.argmax(probs))
        confidence = float(probs[best])
        if not rule.min_confidence <= confidence <= rule.max_confidence:
            return False
        return not rule.labels or labels[best] in rule.labels
