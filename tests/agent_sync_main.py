"""A sync process for the kill tests: ``python -m tests.agent_sync_main QUEUE URL KEY [K]``.

It drains the queue once through the real client and prints ``uploaded N`` after each upload the
server answered. With ``K`` it kills itself with SIGKILL right after the K-th answer, before the
queue forgets that capture: the worst moment, when the server has a capture the queue still
holds. It ends by printing the queue's stats as JSON.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from pathlib import Path

from tagtrain.agent.capture_queue import CaptureMeta, CaptureQueue
from tagtrain.agent.server_link import ServerLink, UploadOutcome
from tagtrain.agent.sync import CaptureSync


class Announcing:
    def __init__(self, link: ServerLink, die_after: int | None) -> None:
        self.link, self.die_after, self.count = link, die_after, 0

    def upload_capture(self, jpeg: bytes, meta: CaptureMeta) -> UploadOutcome:
        outcome = self.link.upload_capture(jpeg, meta)
        self.count += 1
        print(f"uploaded {self.count} existing={outcome.existing}", flush=True)
        if self.count == self.die_after:
            os.kill(os.getpid(), signal.SIGKILL)
        return outcome


def main(argv: list[str]) -> None:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    root, url, key = Path(argv[0]), argv[1], argv[2]
    die_after = int(argv[3]) if len(argv) > 3 else None
    with CaptureQueue(root, budget_bytes=10**9) as queue, ServerLink(url, key) as link:
        CaptureSync(queue, Announcing(link, die_after), batch=4).drain_once()
        print(queue.stats().model_dump_json(), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
