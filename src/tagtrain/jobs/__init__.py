"""Jobs: submitting work (a snapshot plus a queued job row) and the runner that executes it.

The runner is an interface (:class:`~tagtrain.jobs.runner.JobRunner`) with a local worker-process
implementation; a Ray-backed one can follow. Nothing here imports torch: the web app submits, a
separate worker process trains (``python -m tagtrain.train.worker``).
"""
