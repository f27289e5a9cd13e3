"""Commands for images, tags and datasets: import, images, tags ..., datasets ..."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from tagtrain.cli.common import (
    DEFAULT_DATA,
    AllOpt,
    DataOpt,
    IdsOpt,
    JsonOpt,
    UntaggedOpt,
    WhereDatasetOpt,
    WhereTagOpt,
    chosen_images,
    emit,
    err,
    handled,
    image_filter,
    opened,
    out,
    pass_data_down,
    print_table,
    settings_for,
)

tags_app = typer.Typer(
    help="List tags (no subcommand) and manage them.", invoke_without_command=True
)
datasets_app = typer.Typer(
    help="List datasets (no subcommand) and manage them.", invoke_without_command=True
)


def register(app: typer.Typer) -> None:
    app.command("import")(import_)
    app.command("images")(images)
    app.add_typer(tags_app, name="tags")
    app.add_typer(datasets_app, name="datasets")


@handled
def import_(
    paths: Annotated[list[Path], typer.Argument(help="Image files, folders, .zip or .jsonl.")],
    data: DataOpt = DEFAULT_DATA,
    dataset: Annotated[str | None, typer.Option(help="Add the images to this dataset.")] = None,
    tags_from_folders: Annotated[
        bool, typer.Option("--tags-from-folders", help="Tag each image with its folder's name.")
    ] = False,
    labels_csv: Annotated[
        Path | None, typer.Option(help="CSV of filename,tags (tags joined by ';').")
    ] = None,
    tag: Annotated[list[str] | None, typer.Option(help="Tag every image (repeatable).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Import images. Rejected files are listed on stderr and make the exit code 2; the good ones
    are stored all the same. Importing the same bytes again stores nothing twice."""
    from tagtrain.ingest import ImportOptions, import_paths

    settings = settings_for(data)
    options = ImportOptions(
        dataset=dataset,
        tags=tuple(tag or ()),
        tags_from_folders=tags_from_folders,
        thumbnail_size=settings.thumbnail_size,
    )
    with opened(data) as store, _progress(as_json) as (set_total, advance):
        report = import_paths(
            store,
            settings,
            paths,
            options,
            labels_csv=labels_csv,
            on_total=set_total,
            progress=advance,
        )
    rejected = [{"name": r.name, "reason": r.reason} for r in report.rejected]
    summary = {"added": report.added, "existing": report.existing, "rejected": rejected}
    where = f" into dataset {dataset!r}" if dataset else ""
    emit(
        as_json,
        summary | {"dataset": dataset},
        lambda: out.print(
            f"Stored {report.added} new images{where}; {report.existing} were stored already; "
            f"{len(rejected)} rejected."
        ),
    )
    for r in report.rejected:
        err.print(
            f"[yellow]rejected[/yellow] {escape(r.name)}: {escape(r.reason)}", highlight=False
        )
    if report.rejected:
        raise typer.Exit(2)


@contextmanager
def _progress(quiet: bool) -> Iterator[tuple[Callable[[int], None], Callable[[int], None]]]:
    bar = Progress(
        TextColumn("importing"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err,
        disable=quiet,
        transient=True,
    )
    task = bar.add_task("import", total=None)
    with bar:
        yield (lambda total: bar.update(task, total=total), lambda n: bar.advance(task, n))


@handled
def images(
    data: DataOpt = DEFAULT_DATA,
    where_tag: WhereTagOpt = None,
    where_dataset: WhereDatasetOpt = None,
    untagged: UntaggedOpt = False,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 50,
    cursor: Annotated[int | None, typer.Option(help="next_cursor of the last page.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """List images, newest first, optionally filtered."""
    from tagtrain.store.images import page

    flt = image_filter(where_tag=where_tag, where_dataset=where_dataset, untagged=untagged)
    with opened(data) as store, store.transaction() as session:
        pg = page(session, flt, cursor=cursor, limit=limit)
    rows: list[dict[str, Any]] = [
        {"id": r.image.id, "name": r.image.original_name, "tags": r.tags, "sha256": r.image.sha256}
        for r in pg.items
    ]
    emit(
        as_json,
        {"images": rows, "next_cursor": pg.next_cursor},
        lambda: print_table(
            "Images",
            ["id", "name", "tags"],
            [[r["id"], r["name"], ", ".join(r["tags"])] for r in rows],
        ),
    )


# ---- tags ------------------------------------------------------------------------------------


@tags_app.callback()
@handled
def tags(ctx: typer.Context, data: DataOpt = DEFAULT_DATA, as_json: JsonOpt = False) -> None:
    """List tags with their image counts."""
    if ctx.invoked_subcommand is not None:
        pass_data_down(ctx, data)
        return
    from tagtrain.store.tags import list_tags

    with opened(data) as store, store.transaction() as session:
        rows = list_tags(session)
    emit(
        as_json,
        {"tags": [{"name": n, "count": c} for n, c in rows]},
        lambda: print_table("Tags", ["tag", "images"], [list(r) for r in rows]),
    )


@tags_app.command("add")
@handled
def tags_add(
    names: Annotated[list[str], typer.Argument(help="Tags to add.")],
    data: DataOpt = DEFAULT_DATA,
    ids: IdsOpt = None,
    where_tag: WhereTagOpt = None,
    where_dataset: WhereDatasetOpt = None,
    untagged: UntaggedOpt = False,
    everything: AllOpt = False,
) -> None:
    """Add tags to images chosen by --ids or a filter."""
    from tagtrain.store.tags import add_tags

    with opened(data) as store, store.transaction() as session:
        chosen = chosen_images(
            session, ids=ids, where_tag=where_tag, where_dataset=where_dataset,
            untagged=untagged, everything=everything,
        )  # fmt: skip
        n = add_tags(session, chosen, names)
    out.print(f"Added {n} tag(s).")


@tags_app.command("remove")
@handled
def tags_remove(
    names: Annotated[list[str], typer.Argument(help="Tags to remove.")],
    data: DataOpt = DEFAULT_DATA,
    ids: IdsOpt = None,
    where_tag: WhereTagOpt = None,
    where_dataset: WhereDatasetOpt = None,
    everything: AllOpt = False,
) -> None:
    """Remove tags from images chosen by --ids or a filter."""
    from tagtrain.store.tags import remove_tags

    with opened(data) as store, store.transaction() as session:
        chosen = chosen_images(
            session, ids=ids, where_tag=where_tag, where_dataset=where_dataset,
            untagged=False, everything=everything,
        )  # fmt: skip
        n = remove_tags(session, chosen, names)
    out.print(f"Removed {n} tag(s).")


@tags_app.command("rename")
@handled
def tags_rename(old: str, new: str, data: DataOpt = DEFAULT_DATA) -> None:
    """Rename a tag (to merge into an existing tag, use 'tags merge')."""
    from tagtrain.store.tags import rename_tag

    with opened(data) as store, store.transaction() as session:
        rename_tag(session, old, new)
    out.print(f"Renamed {old!r} to {new!r}.")


@tags_app.command("merge")
@handled
def tags_merge(
    sources: Annotated[list[str], typer.Argument(help="Tags to fold in and delete.")],
    into: Annotated[str, typer.Option(help="The tag that remains.")],
    data: DataOpt = DEFAULT_DATA,
) -> None:
    """Merge tags into one: their images get INTO, and they are deleted."""
    from tagtrain.store.tags import merge_tags

    with opened(data) as store, store.transaction() as session:
        n = merge_tags(session, sources, into)
    out.print(f"Merged {', '.join(sources)} into {into!r} ({n} image(s) newly tagged).")


@tags_app.command("delete")
@handled
def tags_delete(name: str, data: DataOpt = DEFAULT_DATA) -> None:
    """Delete a tag from every image (the images stay)."""
    from tagtrain.store.tags import delete_tag

    with opened(data) as store, store.transaction() as session:
        delete_tag(session, name)
    out.print(f"Deleted tag {name!r}.")


# ---- datasets --------------------------------------------------------------------------------


@datasets_app.callback()
@handled
def datasets(ctx: typer.Context, data: DataOpt = DEFAULT_DATA, as_json: JsonOpt = False) -> None:
    """List datasets with their image counts."""
    if ctx.invoked_subcommand is not None:
        pass_data_down(ctx, data)
        return
    from tagtrain.store.datasets import list_datasets, stats

    with opened(data) as store, store.transaction() as session:
        rows: list[dict[str, Any]] = []
        for ds, n in list_datasets(session):
            st = stats(session, ds.name)
            rows.append(
                {"name": ds.name, "images": n, "untagged": st.untagged, "tags": st.tag_counts}
            )
    emit(
        as_json,
        {"datasets": rows},
        lambda: print_table(
            "Datasets",
            ["dataset", "images", "untagged", "tags"],
            [[r["name"], r["images"], r["untagged"], _fmt_counts(r["tags"])] for r in rows],
        ),
    )


def _fmt_counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in counts.items())


@datasets_app.command("create")
@handled
def datasets_create(
    name: str,
    data: DataOpt = DEFAULT_DATA,
    description: Annotated[str, typer.Option(help="What the dataset is for.")] = "",
) -> None:
    """Create an empty dataset."""
    from tagtrain.store.datasets import create

    with opened(data) as store, store.transaction() as session:
        create(session, name, description)
    out.print(f"Created dataset {name!r}.")


@datasets_app.command("show")
@handled
def datasets_show(name: str, data: DataOpt = DEFAULT_DATA, as_json: JsonOpt = False) -> None:
    """A dataset's statistics: images, untagged, images per tag."""
    from tagtrain.store.datasets import stats

    with opened(data) as store, store.transaction() as session:
        st = stats(session, name)
    emit(
        as_json,
        {"name": st.name, "images": st.images, "untagged": st.untagged, "tags": st.tag_counts},
        lambda: print_table(
            f"{st.name}: {st.images} images, {st.untagged} untagged",
            ["tag", "images"],
            [[k, v] for k, v in st.tag_counts.items()],
        ),
    )


@datasets_app.command("rename")
@handled
def datasets_rename(old: str, new: str, data: DataOpt = DEFAULT_DATA) -> None:
    """Rename a dataset."""
    from tagtrain.store.datasets import rename

    with opened(data) as store, store.transaction() as session:
        rename(session, old, new)
    out.print(f"Renamed dataset {old!r} to {new!r}.")


@datasets_app.command("delete")
@handled
def datasets_delete(name: str, data: DataOpt = DEFAULT_DATA) -> None:
    """Delete a dataset (its images stay in the store)."""
    from tagtrain.store.datasets import delete_dataset

    with opened(data) as store, store.transaction() as session:
        delete_dataset(session, name)
    out.print(f"Deleted dataset {name!r}.")


@datasets_app.command("add")
@handled
def datasets_add(
    name: str,
    data: DataOpt = DEFAULT_DATA,
    ids: IdsOpt = None,
    where_tag: WhereTagOpt = None,
    where_dataset: WhereDatasetOpt = None,
    untagged: UntaggedOpt = False,
    everything: AllOpt = False,
) -> None:
    """Add images chosen by --ids or a filter to a dataset."""
    from tagtrain.store.datasets import add_images

    with opened(data) as store, store.transaction() as session:
        chosen = chosen_images(
            session, ids=ids, where_tag=where_tag, where_dataset=where_dataset,
            untagged=untagged, everything=everything,
        )  # fmt: skip
        n = add_images(session, name, chosen)
    out.print(f"Added {n} image(s) to {name!r}.")


@datasets_app.command("remove")
@handled
def datasets_remove(
    name: str,
    data: DataOpt = DEFAULT_DATA,
    ids: IdsOpt = None,
    where_tag: WhereTagOpt = None,
    untagged: UntaggedOpt = False,
    everything: AllOpt = False,
) -> None:
    """Remove images chosen by --ids or a filter from a dataset."""
    from tagtrain.store.datasets import remove_images

    with opened(data) as store, store.transaction() as session:
        chosen = chosen_images(
            session, ids=ids, where_tag=where_tag, where_dataset=name,
            untagged=untagged, everything=everything,
        )  # fmt: skip
        n = remove_images(session, name, chosen)
    out.print(f"Removed {n} image(s) from {name!r}.")
