"""Render rows as one rich table, and write them as JSON."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from bench.rows import Row, number

DASH = "—"
TIMES = "\N{MULTIPLICATION SIGN}"
MIN_WIDTH = 120  # wide enough for one line per row when the output is not a terminal
Grouped = Sequence[tuple[str, Row]]


def render(rows: Grouped, *, note: str = "", console: Console | None = None) -> None:
    caption = "; ".join(filter(None, ["ratio = figure ÷ peer", note]))
    table = Table(title="tagtrain benchmarks", caption=caption)
    for column in ("benchmark", "figure", "bar", "peer", "ratio", "ok"):
        table.add_column(column, justify="left" if column == "benchmark" else "right")
    for _group, row in rows:
        table.add_row(*cells(row))
    (console or wide_console()).print(table)


def wide_console() -> Console:
    console = Console()
    return console if console.width >= MIN_WIDTH else Console(width=MIN_WIDTH)


def cells(row: Row) -> list[str]:
    if row.error is not None or row.figure is None:
        error = f"[red]{escape(row.error or 'no figure')}[/red]"
        return [escape(row.benchmark), error, DASH, DASH, DASH, "[red]✗[/red]"]
    return [
        escape(row.benchmark),
        with_unit(row.figure, row.unit),
        DASH if row.bar is None else f"{row.bar} {row.unit}",
        DASH if row.peer is None else with_unit(row.peer, row.unit),
        DASH if row.ratio is None else f"{row.ratio:.2f}{TIMES}",
        {True: "[green]✓[/green]", False: "[red]✗[/red]", None: DASH}[row.ok],
    ]


def with_unit(x: float, unit: str) -> str:
    return f"{number(x)} {unit}".rstrip()


def write_json(
    rows: Grouped, path: Path, context: Mapping[str, Mapping[str, Any]] | None = None
) -> None:
    """A JSON list, one object per row; ``context[group]`` (e.g. the load average) is merged in."""
    path.parent.mkdir(parents=True, exist_ok=True)
    context = context or {}
    payload = [row.as_json(group) | dict(context.get(group, {})) for group, row in rows]
    path.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
