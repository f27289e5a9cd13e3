"""Writing a file so that readers see the old one or the whole new one, never a part.

The bytes go to a temp file in the same folder, then one rename puts it in place. The temp name
is ``.tmp-<pid>-...``: whoever cleans up leftovers later can tell a dead writer's (remove) from a
live one's (leave) with :func:`tagtrain.processes.pid_alive`.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

TEMP_PREFIX = ".tmp-"


def write_atomic(path: Path, data: bytes, *, durable: bool = False) -> None:
    """Put ``data`` at ``path`` (its folder must exist). ``durable`` flushes the file to disk
    before the rename; making the folder entry durable is the caller's choice (one fsync or
    syncfs for a batch is far cheaper than one per file)."""
    fd, tmp = tempfile.mkstemp(prefix=f"{TEMP_PREFIX}{os.getpid()}-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
