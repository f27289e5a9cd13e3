"""The model an agent serves now. A new version replaces the old one whole, in one assignment:
requests that already hold the old classifier finish on it, new ones get the new one, and none
waits for a load (loading and verifying happen before the swap, outside the lock)."""

from __future__ import annotations

import threading

from tagtrain.errors import Unavailable
from tagtrain.runtime import Classifier


class ModelSlot:
    def __init__(self, classifier: Classifier | None = None) -> None:
        self._lock = threading.Lock()
        self._classifier = classifier

    def get(self) -> Classifier:
        """The current classifier; Unavailable while nothing is deployed."""
        classifier = self._classifier
        if classifier is None:
            raise Unavailable(
                "no model is deployed to this machine yet; deploy a model version to it from "
                "the server's Models page"
            )
        return classifier

    def swap(self, classifier: Classifier) -> Classifier | None:
        """Serve ``classifier`` from now on; returns the one it replaces."""
        with self._lock:
            old, self._classifier = self._classifier, classifier
        return old

    @property
    def ref(self) -> str | None:
        """``name@version`` of what is served, or None."""
        classifier = self._classifier
        if classifier is None:
            return None
        manifest = classifier.manifest
        return f"{manifest.name}@{manifest.version}"
