"""Where jobs run. :class:`JobRunner` is the seam; :class:`LocalWorkerRunner` keeps one worker
process beside the web app (``python -m tagtrain.train.worker``), which polls the job queue in the
database, so jobs queued while it was down are picked up when it comes back."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Protocol

from tagtrain.settings import Settings


class JobRunner(Protocol):
    def start(self) -> None: ...
    def stop(self) -> None: ...
    def alive(self) -> bool: ...


class LocalWorkerRunner:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        if self.alive():
            return
        env = dict(os.environ, TAGTRAIN_DATA=str(self.settings.data))
        if self.settings.database_url:
            env["TAGTRAIN_DATABASE_URL"] = self.settings.database_url
        self._proc = subprocess.Popen([sys.executable, "-m", "tagtrain.train.worker"], env=env)

    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def stop(self) -> None:
        if self._proc is None:
            return
        self._proc.terminate()
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._proc = None


class NoRunner:
    """For tests and read-only servers: jobs stay queued until a worker runs somewhere."""

    def start(self) -> None:
        return None

    def stop(self) -> None:
        return None

    def alive(self) -> bool:
        return False
