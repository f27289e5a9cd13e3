"""Running the real ``tagtrain`` command and waiting for what it does, for any test."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.conftest import ROOT

DROP = ("COLUMNS", "LINES", "FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE")


def tagtrain_exe() -> str:
    beside = Path(sys.executable).parent / "tagtrain"
    return str(beside if beside.exists() else ROOT / ".venv" / "bin" / "tagtrain")


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """This process's environment without anything that would change a run under test: the
    TAGTRAIN_* settings, the terminal's size and colour."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAGTRAIN_") and k not in DROP}
    return env | (extra or {})


def cli(*args: object, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the real console script; no TAGTRAIN_* variables leak in from the outside."""
    return subprocess.run(
        [tagtrain_exe(), *map(str, args)],
        capture_output=True,
        text=True,
        env=clean_env(env),
        timeout=300,
        check=False,
    )


def eventually(check: Callable[[], Any], timeout: float = 15.0) -> Any:
    """``check()``'s first truthy result, retrying on falsy results and exceptions until
    ``timeout``; then the last exception is raised, or the falsy result returned."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = check()
            if result or time.monotonic() > deadline:
                return result
        except Exception:
            if time.monotonic() > deadline:
                raise
        time.sleep(0.05)
