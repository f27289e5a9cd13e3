"""What the benchmarks share: where things are, temp folders, timing and percentiles."""

from __future__ import annotations

import os
import statistics
import sysconfig
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATASETS = Path(os.environ.get("TAGTRAIN_DATASETS", ROOT.parent / "shared" / "datasets"))
TRASHNET = DATASETS / "trashnet_6class"


def scripts_dir() -> Path:
    """The ``bin`` folder of the running environment (where ``tagtrain`` is installed)."""
    return Path(sysconfig.get_path("scripts"))


@contextmanager
def temp_dir(label: str) -> Iterator[Path]:
    """A fresh folder, removed with everything in it on the way out."""
    with tempfile.TemporaryDirectory(prefix=f"tagtrain-bench-{label}-") as name:
        yield Path(name)


def trashnet_by_class() -> dict[str, list[Path]]:
    """The 300 trashnet photos by class folder, in a stable order."""
    folders = sorted(p for p in TRASHNET.iterdir() if p.is_dir())
    if not folders:
        raise FileNotFoundError(f"no class folders in {TRASHNET}; set TAGTRAIN_DATASETS")
    return {f.name: sorted(f.glob("*.jpg")) for f in folders}


def time_calls(fn: Callable[[], object], *, n: int, warmup: int) -> list[float]:
    """Seconds per call of ``fn`` over ``n`` calls, after ``warmup`` untimed ones."""
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return samples


@dataclass(frozen=True)
class Latency:
    p50_ms: float
    p95_ms: float
    n: int


def latency(samples_s: list[float]) -> Latency:
    ms = [s * 1000 for s in samples_s]
    p95 = statistics.quantiles(ms, n=100, method="inclusive")[94]
    return Latency(statistics.median(ms), p95, len(ms))
