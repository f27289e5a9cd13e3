"""Whether a process is still alive, for the parts that tag their work with a pid (blob temp
files, a job's worker, capture-queue temp files) and must tell a dead writer's leftovers from a
live writer's work in progress."""

from __future__ import annotations

import os


def pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)  # signal 0: checks the process exists, sends nothing
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, owned by someone else
        return True
    return True
