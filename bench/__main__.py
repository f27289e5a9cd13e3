"""``python -m bench [NAME...]``: run benchmarks, print one table, write bench-out/results.json.

Exit code 0 when every row meets its bar, 1 when one misses it or a benchmark failed, 2 for an
unknown benchmark name.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import traceback
import warnings
from pathlib import Path

from rich.console import Console

from bench.registry import BENCHMARKS, Benchmark, select
from bench.rows import Row, failed
from bench.table import render, write_json

ROOT = Path(__file__).resolve().parents[1]
console = Console(stderr=True, soft_wrap=True)
BUSY = 0.5  # load per core above which a warning is printed


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    # FastAPI's TestClient warns on import; pyproject silences the same warning for pytest.
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    try:
        chosen = select(args.names)
    except KeyError as exc:
        console.print(f"[red]error:[/red] {exc.args[0]}", highlight=False)
        return 2
    rows: list[tuple[str, Row]] = []
    loads: dict[str, float] = {}
    for benchmark in chosen:
        loads[benchmark.name] = load_before(benchmark)
        rows += [(benchmark.name, row) for row in run_one(benchmark)]
    cores = os.cpu_count() or 1
    render(rows, note=f"highest load average before a benchmark: {max(loads.values()):.2f}")
    write_json(rows, args.out, {g: {"load_avg_1m": v, "cores": cores} for g, v in loads.items()})
    console.print(f"rows written to {args.out}", highlight=False)
    return 0 if all(row.ok is not False for _, row in rows) else 1


def load_before(benchmark: Benchmark) -> float:
    """The 1-minute load average now; warns when other processes are busy enough to skew."""
    load, cores = os.getloadavg()[0], os.cpu_count() or 1
    if load > BUSY * cores:
        console.print(
            f"[yellow]warning:[/yellow] load average {load:.2f} on {cores} cores before "
            f"{benchmark.name}: other processes compete, figures will read low",
            highlight=False,
        )
    return load


def run_one(benchmark: Benchmark) -> list[Row]:
    """Run one benchmark; a crash becomes a failed row so the others still run."""
    console.print(f"[bold]{benchmark.name}[/bold]: {benchmark.summary} ...", highlight=False)
    start = time.perf_counter()
    try:
        rows = benchmark.load()()
    except Exception as exc:
        traceback.print_exc()
        rows = [failed(benchmark.name, exc)]
    console.print(f"  done in {time.perf_counter() - start:.1f} s", highlight=False)
    return rows


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "names", nargs="*", metavar="NAME", help=f"benchmarks to run: {', '.join(BENCHMARKS)}"
    )
    parser.add_argument(
        "--out", type=Path, default=ROOT / "bench-out" / "results.json", help="JSON output file"
    )
    return parser


if __name__ == "__main__":
    sys.exit(main())
