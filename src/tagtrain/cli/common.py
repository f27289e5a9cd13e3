"""What every command shares: options, error handling, opening the store, rendering."""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ParamSpec, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from tagtrain.errors import BadInput, TagtrainError
from tagtrain.settings import Settings

if TYPE_CHECKING:
    from tagtrain.store import Store
    from tagtrain.store.filters import ImageFilter
    from tagtrain.store.tags import Selection

out = Console(markup=False, highlight=False)  # names print verbatim, '[x]' included
err = Console(stderr=True, soft_wrap=True)  # one line per message, even when piped

DataOpt = Annotated[
    Path,
    typer.Option("--data", envvar="TAGTRAIN_DATA", help="Data folder (database and files)."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")]
DEFAULT_DATA = Path("./tagtrain-data")

# Options that choose images for a bulk action.
IdsOpt = Annotated[str | None, typer.Option("--ids", help="Image ids, comma-separated.")]
WhereTagOpt = Annotated[
    list[str] | None, typer.Option("--where-tag", help="Images with this tag (repeatable).")
]
WhereDatasetOpt = Annotated[str | None, typer.Option("--where-dataset", help="Images in it.")]
UntaggedOpt = Annotated[bool, typer.Option("--untagged", help="Images with no tag.")]
AllOpt = Annotated[bool, typer.Option("--all", help="Every image.")]

P = ParamSpec("P")
R = TypeVar("R")


def handled(fn: Callable[P, R]) -> Callable[P, R]:
    """Turn tagtrain errors into one sentence on stderr and the documented exit code."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except TagtrainError as exc:
            err.print(f"[red]error:[/red] {escape(exc.message)}", highlight=False)
            raise typer.Exit(2 if exc.bad_input else 1) from exc
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(map(str, first["loc"])) or "input"
            err.print(f"[red]error:[/red] {escape(where)}: {escape(first['msg'])}", highlight=False)
            raise typer.Exit(2) from exc

    return wrapper


def pass_data_down(ctx: typer.Context, data: Path) -> None:
    """``tagtrain tags --data D delete x``: a group's --data reaches its subcommand, whose own
    --data option falls back to $TAGTRAIN_DATA (click reads it after this callback ran)."""
    source = ctx.get_parameter_source("data")  # typer vendors click: compare by name
    if source is not None and source.name == "COMMANDLINE":
        os.environ["TAGTRAIN_DATA"] = str(data)


def settings_for(data: Path, **overrides: Any) -> Settings:
    return Settings(data=data, **overrides)


@contextmanager
def opened(data: Path) -> Iterator[Store]:
    from tagtrain.store import open_store

    store = open_store(settings_for(data))
    try:
        yield store
    finally:
        store.close()


def emit(as_json: bool, obj: dict[str, Any], human: Callable[[], None]) -> None:
    if as_json:
        sys.stdout.write(json.dumps(obj, default=str) + "\n")
    else:
        human()


def print_table(title: str, columns: list[str], rows: list[list[Any]]) -> None:
    table = Table(title=title)
    for col in columns:
        table.add_column(col)
    for row in rows:
        table.add_row(*(Text(str(cell)) for cell in row))
    out.print(table)


def chosen_images(
    session: Any,
    *,
    ids: str | None,
    where_tag: list[str] | None,
    where_dataset: str | None,
    untagged: bool,
    everything: bool,
) -> Selection:
    """The images a bulk command applies to; a person must name them (no silent 'all')."""
    from tagtrain.store.filters import filtered_ids
    from tagtrain.store.images import by_ids

    if ids:
        try:
            return by_ids([int(i) for i in ids.split(",") if i.strip()])
        except ValueError as exc:
            raise BadInput(f"--ids must be numbers separated by commas, not {ids!r}") from exc
    flt = image_filter(where_tag=where_tag, where_dataset=where_dataset, untagged=untagged)
    if flt == type(flt)() and not everything:
        raise BadInput("say which images: --ids, --where-tag, --where-dataset, --untagged or --all")
    return filtered_ids(session, flt)


def image_filter(
    *, where_tag: list[str] | None, where_dataset: str | None, untagged: bool
) -> ImageFilter:
    from tagtrain.store.filters import ImageFilter

    return ImageFilter(tags=tuple(where_tag or ()), dataset=where_dataset, untagged=untagged)
