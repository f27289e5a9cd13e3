"""The training worker: ``python -m tagtrain.train.worker`` (started by the web app).

It polls the job queue, claims one job at a time and runs it in a child process, so a crash or an
out-of-memory kill of the training code is recorded on the job ("failed" with the reason) and the
worker goes on with the next one. Jobs left running by a dead worker are failed on start-up.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import signal
import time
from types import FrameType

from tagtrain.settings import Settings
from tagtrain.store import Store, jobs, open_store

log = logging.getLogger("tagtrain.worker")


class Worker:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.store: Store = open_store(settings)
        self.running = True
        self.child: mp.process.BaseProcess | None = None

    def stop(self, _signum: int = 0, _frame: FrameType | None = None) -> None:
        self.running = False
        if self.child is not None and self.child.is_alive():
            self.child.terminate()

    def run_forever(self) -> None:
        with self.store.transaction() as session:
            for job_id in jobs.recover_orphans(session):
                log.warning("job %s was left running by a dead worker; marked failed", job_id)
        while self.running:
            if not self.run_next():
                time.sleep(self.settings.worker_poll_s)

    def run_next(self) -> bool:
        """Run the oldest queued job, if any; returns whether there was one."""
        with self.store.transaction() as session:
            job_id = jobs.next_queued(session)
            if job_id is None or not jobs.claim(session, job_id):
                return False
        ctx = mp.get_context("spawn")
        self.child = ctx.Process(target=_child_main, args=(self.settings, job_id), daemon=True)
        self.child.start()
        with self.store.transaction() as session:
            jobs.get(session, job_id).worker_pid = self.child.pid
        self.child.join()
        self._record_crash(job_id, self.child.exitcode)
        self.child = None
        return True

    def _record_crash(self, job_id: int, exitcode: int | None) -> None:
        with self.store.transaction() as session:
            job = jobs.get(session, job_id)
            if job.state != "running":
                return
            reason = (
                f"the training process was killed (signal {-exitcode})"
                if exitcode is not None and exitcode < 0
                else f"the training process exited with code {exitcode}"
            )
            if not self.running:
                reason = "the worker was stopped while this job ran; queue it again"
            jobs.finish(session, job_id, "failed", error=reason)


def _child_main(settings: Settings, job_id: int) -> None:
    # Imported here so the supervising process never loads torch (train/__init__ is light).
    from tagtrain.train.job import run_training_job  # noqa: PLC0415

    store = open_store(settings)
    try:
        run_training_job(store, settings, job_id)
    finally:
        store.close()


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    worker = Worker(Settings())
    signal.signal(signal.SIGTERM, worker.stop)
    signal.signal(signal.SIGINT, worker.stop)
    worker.run_forever()


if __name__ == "__main__":
    main()
