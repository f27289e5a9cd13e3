"""Sync: a background thread that sends queued captures to the server, oldest first.

A capture leaves the queue only after the server answered for it: a capture the server stored
(200) is ``done``; one it will never take (400/413/422: not an image, too large) is dropped and
counted. An agent killed between an upload and its ``done`` sends that capture again on restart,
which costs nothing: the server stores images by the sha256 of their bytes and answers
``existing``. While the server cannot be reached (or refuses the key) nothing is dropped: the
thread waits with exponential backoff and jitter, and logs once when the outage starts and once
when it ends.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from typing import Protocol

from tagtrain.agent.capture_queue import CaptureMeta, CaptureQueue, QueuedCapture
from tagtrain.agent.server_link import UploadOutcome
from tagtrain.errors import BadInput, TagtrainError

log = logging.getLogger("tagtrain.agent")


class Uploader(Protocol):
    """What sync needs of :class:`~tagtrain.agent.server_link.ServerLink`."""

    def upload_capture(self, jpeg: bytes, meta: CaptureMeta) -> UploadOutcome: ...


class CaptureSync:
    def __init__(
        self,
        queue: CaptureQueue,
        link: Uploader,
        *,
        batch: int = 16,
        min_backoff_s: float = 0.5,
        max_backoff_s: float = 60,
        idle_s: float = 1.0,
    ) -> None:
        """``idle_s``: how often an empty queue is looked at again (``wake`` cuts it short)."""
        self.queue, self.link = queue, link
        self.batch = batch
        self.min_backoff_s, self.max_backoff_s = min_backoff_s, max_backoff_s
        self.idle_s = idle_s
        self.last_rate = 0.0  # captures/s of the last drain that sent any
        self.last_error: str | None = None  # the sentence of the outage going on, if any
        self._outage_since: float | None = None
        self._outage_kind: type[TagtrainError] | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def drain_once(self) -> int:
        """Send what is pending, batch by batch, until the queue is empty; returns how many
        captures the server took. Raises the error (Unavailable, Unauthorized, ...) that stopped
        it when the server cannot take them now; what was sent before that stays done."""
        sent = 0
        started = time.monotonic()
        try:
            while not self._stop.is_set():
                items = self.queue.pending(self.batch)
                if not items:
                    break
                for item in items:
                    sent += self._send(item)
        finally:
            if sent:
                self.last_rate = sent / max(time.monotonic() - started, 1e-9)
        if sent:
            self._recovered(sent)
        return sent

    def _send(self, item: QueuedCapture) -> int:
        """1 when the server took ``item``, 0 when it was dropped."""
        try:
            jpeg = item.read()
        except FileNotFoundError:
            return 0  # the queue's budget dropped it since it was listed
        try:
            self.link.upload_capture(jpeg, item.meta)
        except BadInput as exc:  # the server will never take it: trying again cannot help
            self.queue.drop(item, f"the server refused it: {exc.message}")
            return 0
        self.queue.done(item)
        return 1

    # -- the thread --------------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="tagtrain-sync", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10) -> None:
        """Stop after the upload in flight (if any); a capture cut off is sent again later."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def wake(self) -> None:
        """Look at the queue now (a camera just put a capture) rather than at the next poll."""
        self._wake.set()

    def _run(self) -> None:
        delay = self.min_backoff_s
        while not self._stop.is_set():
            try:
                self.drain_once()
            except TagtrainError as exc:
                self._failed(exc)
                self._pause(random.uniform(delay / 2, delay))  # jitter: machines spread out
                delay = min(delay * 2, self.max_backoff_s)
                continue
            except Exception:  # a bug must not end syncing for the agent's lifetime
                log.exception("capture sync failed unexpectedly; retrying")
                self._pause(self.max_backoff_s)
                continue
            delay = self.min_backoff_s
            self._pause(self.idle_s)

    def _pause(self, seconds: float) -> None:
        self._wake.wait(seconds)
        self._wake.clear()

    # -- outage bookkeeping ------------------------------------------------------------------

    def _failed(self, exc: TagtrainError) -> None:
        """One sentence per outage (again only if the reason changes), none per attempt."""
        self.last_error = exc.message
        if self._outage_since is None:
            self._outage_since = time.monotonic()
        elif type(exc) is self._outage_kind:
            return
        self._outage_kind = type(exc)
        log.warning(
            "cannot sync captures (%d waiting): %s; retrying with backoff up to %g s",
            self.queue.stats().pending,
            exc.message,
            self.max_backoff_s,
        )

    def _recovered(self, sent: int) -> None:
        if self._outage_since is None:
            return
        log.warning(
            "synced %d captures after an outage of %.0f s",
            sent,
            time.monotonic() - self._outage_since,
        )
        self._outage_since = self._outage_kind = None
        self.last_error = None
