"""Which benchmarks exist. A benchmark is a function returning rows, named here by module path so
that its module (and whatever heavy library it imports) loads only when it runs."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

from bench.rows import Row

BenchFn = Callable[[], list[Row]]


@dataclass(frozen=True)
class Benchmark:
    name: str
    target: str  # "module:function"
    summary: str

    def load(self) -> BenchFn:
        module_name, _, func_name = self.target.partition(":")
        fn: BenchFn = getattr(importlib.import_module(module_name), func_name)
        return fn


#: In the order ``python -m bench`` runs them. Add a line to add a benchmark.
BENCHMARKS: dict[str, Benchmark] = {
    b.name: b
    for b in (
        Benchmark(
            "import",
            "bench.import_throughput:run",
            "tagtrain import of a folder of 640-px JPEGs, whole CLI process",
        ),
        Benchmark(
            "list",
            "bench.list_page:run",
            "GET /api/v1/images?tag=X&limit=100 with 100k images stored",
        ),
        Benchmark(
            "training",
            "bench.training:run",
            "train + export on trashnet beside a probe and a full fine-tune; coco mAP",
        ),
        Benchmark(
            "inference",
            "bench.inference:run",
            "one JPEG -> classifications through the runtime, fp32 and int8, vs a bare session",
        ),
        Benchmark(
            "agent",
            "bench.agent:run",
            "camera fps and CPU, GetClassifications over HTTP (1 and 16 clients), sync rate",
        ),
    )
}


def select(names: list[str]) -> list[Benchmark]:
    """The named benchmarks (all when ``names`` is empty); unknown names raise KeyError."""
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        raise KeyError(
            f"no benchmark named {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}"
        )
    return [BENCHMARKS[n] for n in names] if names else list(BENCHMARKS.values())
