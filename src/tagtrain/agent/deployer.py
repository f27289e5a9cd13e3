"""Puts the deployed model version on the machine and swaps it in.

Only what changed is fetched: a version already unpacked on disk is loaded from there. Before a
switch the package must pass every check: the manifest the server announced (sha256), each file's
sha256, tensor names and the golden outputs (``Classifier.load``). Anything wrong leaves the
last good model serving and is logged as one sentence; the same bad version is retried only after
:data:`RETRY_AFTER_S`, not on every poll. The last good version is remembered on disk so a
machine restarted while the server is away starts serving at once.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tagtrain.agent.model_slot import ModelSlot
from tagtrain.agent.server_link import Deployment
from tagtrain.errors import PackageError, TagtrainError
from tagtrain.files import write_atomic
from tagtrain.runtime import Classifier, extract_package

log = logging.getLogger("tagtrain.agent")

RETRY_AFTER_S = 60.0
CURRENT = "current.json"


@dataclass(frozen=True)
class _Failure:
    key: str
    at: float


class Deployer:
    def __init__(
        self,
        slot: ModelSlot,
        packages: Path,
        fetch: Callable[[Deployment], bytes],
        *,
        load: Callable[[Path], Classifier] = Classifier.load,
    ) -> None:
        self.slot = slot
        self.packages = packages
        self._fetch = fetch
        self._load = load
        self.current: str | None = None
        self._failure: _Failure | None = None
        self.last_error: str | None = None

    def apply(self, deployment: Deployment | None) -> bool:
        """Serve ``deployment`` if it is not served yet; True when a switch happened."""
        if deployment is None:
            return False
        key = _key(deployment)
        failed = self._failure
        if key == self.current or (
            failed and failed.key == key and time.monotonic() - failed.at < RETRY_AFTER_S
        ):
            return False
        try:
            folder = self._install(deployment)
            self._switch(self._load(folder), key, folder)
        except TagtrainError as exc:
            self._failure = _Failure(key, time.monotonic())
            serving = self.slot.ref or "nothing yet"
            self.last_error = (
                f"could not switch to {deployment.model}@{deployment.version}: {exc.message}; "
                f"still serving {serving}"
            )
            log.error("%s", self.last_error)
            return False
        return True

    def restore(self) -> bool:
        """Serve the last good version recorded on disk (for a start without the server)."""
        if not (self.packages / CURRENT).exists():
            log.info("no model yet: it is served once the server deploys one")
            return False
        try:
            record = json.loads((self.packages / CURRENT).read_text())
            folder = self.packages / record["folder"]
            self._switch(self._load(folder), record["key"], folder)
        except (OSError, ValueError, KeyError, TypeError, TagtrainError) as exc:
            log.info("no earlier model to start with (%s)", exc)
            return False
        return True

    def _install(self, deployment: Deployment) -> Path:
        folder = self.packages / (
            f"{deployment.model}-{deployment.version}-{deployment.manifest_sha256[:12]}"
        )
        if folder.is_dir():
            return folder
        data = self._fetch(deployment)
        extract_package(data, folder)
        got = hashlib.sha256((folder / "manifest.json").read_bytes()).hexdigest()
        if got != deployment.manifest_sha256:
            shutil.rmtree(folder, ignore_errors=True)
            raise PackageError(
                "the downloaded package",
                "its manifest.json is not the one the server announced (sha256 differs): the "
                "download was corrupted or tampered with",
            )
        return folder

    def _switch(self, classifier: Classifier, key: str, folder: Path) -> None:
        self.slot.swap(classifier)
        self.current = key
        self._failure = None
        self.last_error = None
        record = json.dumps({"key": key, "folder": folder.name}).encode()
        write_atomic(self.packages / CURRENT, record, durable=True)
        log.info("now serving %s", self.slot.ref)


def _key(deployment: Deployment) -> str:
    return f"{deployment.model}@{deployment.version}:{deployment.manifest_sha256}"
