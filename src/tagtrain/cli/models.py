"""Commands for models: train, models, export, predict, evaluate."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from tagtrain.cli.common import (
    DEFAULT_DATA,
    DataOpt,
    JsonOpt,
    emit,
    err,
    handled,
    opened,
    out,
    print_table,
    settings_for,
)
from tagtrain.errors import BadInput, TagtrainError

if TYPE_CHECKING:
    from tagtrain.runtime import Classifier
    from tagtrain.runtime.evaluate import Evaluation

TaskOpt = Annotated[str, typer.Option(help="'single' (one label per image) or 'multi'.")]
RefArg = Annotated[str, typer.Argument(help="A package folder, or MODEL[@VERSION] stored here.")]


def register(app: typer.Typer) -> None:
    app.command("train")(train)
    app.command("models")(models)
    app.command("export")(export)
    app.command("predict")(predict)
    app.command("evaluate")(evaluate)


@handled
def train(
    dataset: Annotated[str, typer.Option(help="The dataset to train on.")],
    task: TaskOpt,
    model: Annotated[str, typer.Option(help="Model name; each training adds a version.")],
    labels: Annotated[
        str | None, typer.Option(help="Labels, comma-separated (default: all tags).")
    ] = None,
    data: DataOpt = DEFAULT_DATA,
    as_json: JsonOpt = False,
) -> None:
    """Train a classifier on a dataset (here, in the foreground) and store its model package."""
    from tagtrain.jobs.submit import TrainSpec, submit_training
    from tagtrain.store import jobs, model_versions
    from tagtrain.train.job import run_training_job

    settings = settings_for(data)
    wanted = tuple(lb.strip() for lb in labels.split(",") if lb.strip()) if labels else ()
    with opened(data) as store:
        with store.transaction() as session:
            job = submit_training(session, TrainSpec(dataset, task, model, wanted))
            jobs.claim(session, job.id)
            job_id = job.id
            for warning in json.loads(job.warnings):
                err.print(f"[yellow]warning[/yellow] {escape(warning)}", highlight=False)
        with _train_progress(as_json) as on_event:
            run_training_job(store, settings, job_id, on_event)
        with store.transaction() as session:
            done = jobs.get(session, job_id)
            if done.state != "completed" or done.result_version_id is None:
                raise TagtrainError(f"training {done.state}: {done.error}")
            mdl, version = model_versions.resolve(session, model)
            summary = _version_summary(mdl.name, version)
    emit(as_json, summary, lambda: _print_summary(summary))


@contextmanager
def _train_progress(quiet: bool) -> Iterator[Callable[[Any], None]]:
    bar = Progress(
        TextColumn("{task.description:<10}"),
        BarColumn(),
        TextColumn("{task.fields[detail]}"),
        TimeRemainingColumn(),
        console=err,
        disable=quiet,
        transient=True,
    )
    task = bar.add_task("starting", total=None, detail="")

    def on_event(event: Any) -> None:
        detail = " ".join(
            f"{k} {v:.3f}"
            for k, v in (("loss", event.loss), ("val", event.metric))
            if v is not None
        )
        bar.update(
            task,
            description=event.phase,
            total=event.total or None,
            completed=event.step,
            detail=detail,
        )

    with bar:
        yield on_event


def _version_summary(name: str, version: Any) -> dict[str, Any]:
    return {
        "model": name,
        "version": version.version,
        "dataset": version.dataset,
        "labels": json.loads(version.labels),
        "metrics": json.loads(version.metrics),
        "evaluation": (json.loads(version.report or "{}").get("selection") or {}).get("evaluation"),
        "package": version.package_dir,
    }


def _print_summary(summary: dict[str, Any]) -> None:
    metrics = summary["metrics"]
    headline = {
        k: metrics[k] for k in ("accuracy", "map", "macro_f1") if metrics.get(k) is not None
    }
    figures = ", ".join(f"{k} {v:.3f}" for k, v in headline.items())
    evaluation = summary.get("evaluation") or {}
    n = metrics.get("n", "?")
    how = (
        f"cross-validated: {n} images, {evaluation.get('folds')} folds"
        if evaluation.get("method") == "cross-validation"
        else f"on {n} held-out test images"
    )
    out.print(
        f"Trained {summary['model']}@{summary['version']} on {summary['dataset']}: "
        f"{figures} ({how})"
    )
    out.print(
        f"Package: {summary['package']} (tagtrain export {summary['model']}@{summary['version']} --out DIR)"
    )


@handled
def models(data: DataOpt = DEFAULT_DATA, as_json: JsonOpt = False) -> None:
    """List models and their versions with test metrics."""
    from tagtrain.store import model_versions

    with opened(data) as store, store.transaction() as session:
        rows = [
            _version_summary(m.name, v) | {"task": m.task}
            for m, versions in model_versions.list_models(session)
            for v in versions
        ]
    emit(
        as_json,
        {"models": rows},
        lambda: print_table(
            "Models",
            ["model", "version", "task", "dataset", "test metric"],
            [
                [r["model"], r["version"], r["task"], r["dataset"], _headline(r["metrics"])]
                for r in rows
            ],
        ),
    )


def _headline(metrics: dict[str, Any]) -> str:
    for key in ("accuracy", "map"):
        if metrics.get(key) is not None:
            return f"{key} {metrics[key]:.3f}"
    return "—"


@handled
def export(
    ref: Annotated[str, typer.Argument(help="MODEL or MODEL@VERSION.")],
    out_dir: Annotated[Path, typer.Option("--out", help="Folder to write the package into.")],
    data: DataOpt = DEFAULT_DATA,
) -> None:
    """Write a model package directory (model.onnx, model.int8.onnx, labels, manifest, golden)."""
    source = _package_dir(data, ref)
    if out_dir.exists() and any(out_dir.iterdir()):
        raise BadInput(f"{out_dir} exists and is not empty; choose a new folder")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(source, out_dir, dirs_exist_ok=True)
    out.print(f"Wrote {ref} to {out_dir}")


def _package_dir(data: Path, ref: str) -> Path:
    """A folder holding manifest.json, or MODEL[@VERSION] resolved in the data folder."""
    candidate = Path(ref)
    if (candidate / "manifest.json").is_file():
        return candidate
    from tagtrain.store import model_versions

    with opened(data) as store, store.transaction() as session:
        _model, version = model_versions.resolve(session, ref)
        return settings_for(data).data / version.package_dir


def _classifier(data: Path, ref: str, quantized: bool) -> Classifier:
    from tagtrain.runtime import Classifier

    return Classifier.load(_package_dir(data, ref), quantized=quantized)


@handled
def predict(
    ref: RefArg,
    images: Annotated[list[Path], typer.Argument(help="Image files.")],
    data: DataOpt = DEFAULT_DATA,
    n: Annotated[int, typer.Option("-n", help="How many classes per image (0: all).")] = 3,
    int8: Annotated[bool, typer.Option(help="Run the int8 model.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Classify images with a model package."""
    classifier = _classifier(data, ref, int8)
    results: list[dict[str, Any]] = []
    for path in images:
        try:
            found = classifier.classify_bytes(path.read_bytes(), n, name=str(path))
            results.append({"image": str(path), "classifications": [asdict(c) for c in found]})
        except (TagtrainError, OSError) as exc:
            results.append({"image": str(path), "error": getattr(exc, "message", str(exc))})
    emit(as_json, {"predictions": results}, lambda: _print_predictions(results))
    if any("error" in r for r in results):
        raise typer.Exit(2)


def _print_predictions(results: list[dict[str, Any]]) -> None:
    for r in results:
        if "error" in r:
            err.print(f"[red]error[/red] {escape(r['error'])}", highlight=False)
            continue
        found = ", ".join(f"{c['class_name']} {c['confidence']:.2f}" for c in r["classifications"])
        out.print(f"{r['image']}: {found or '(nothing above its threshold)'}")


@handled
def evaluate(
    ref: RefArg,
    path: Annotated[Path, typer.Argument(help="A folder (or zip) of labeled images.")],
    data: DataOpt = DEFAULT_DATA,
    tags_from_folders: Annotated[
        bool, typer.Option("--tags-from-folders", help="Each image's folder name is its label.")
    ] = False,
    labels_csv: Annotated[Path | None, typer.Option(help="CSV of filename,tags.")] = None,
    int8: Annotated[bool, typer.Option(help="Score the int8 model.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Score a model on labeled images with the same metrics as its training report."""
    if tags_from_folders == (labels_csv is not None):
        raise BadInput("say where the labels are: --tags-from-folders or --labels-csv FILE")
    classifier = _classifier(data, ref, int8)
    with ExitStack() as stack:
        result = _evaluate(classifier, path, tags_from_folders, labels_csv, stack)
    for name, reason in result.skipped:
        err.print(f"[yellow]skipped[/yellow] {escape(name)}: {escape(reason)}", highlight=False)
    payload = {"scored": result.scored, "skipped": len(result.skipped), "metrics": result.report}
    emit(as_json, payload, lambda: _print_report(result))


def _evaluate(
    classifier: Classifier,
    path: Path,
    tags_from_folders: bool,
    labels_csv: Path | None,
    stack: ExitStack,
) -> Evaluation:
    from tagtrain.ingest.labels_csv import apply_labels, read_labels_csv
    from tagtrain.ingest.sources import Item, Limits, from_path
    from tagtrain.runtime.evaluate import Sample
    from tagtrain.runtime.evaluate import evaluate as run_evaluation

    settings = settings_for(DEFAULT_DATA)
    limits = Limits(settings.max_upload_bytes, settings.max_zip_entries, settings.max_zip_bytes)
    entries = list(from_path(path, limits, stack))
    if labels_csv is not None:
        entries = list(apply_labels(read_labels_csv(labels_csv), entries))
    samples = [
        Sample(e.name, e.read, (e.folder,) if tags_from_folders and e.folder else e.tags)
        for e in entries
        if isinstance(e, Item)
    ]
    return run_evaluation(classifier, samples)


def _print_report(result: Evaluation) -> None:
    rep = result.report
    out.print(f"Scored {result.scored} images ({len(result.skipped)} skipped): {_headline(rep)}")
    per = rep.get("per_class") or rep.get("per_label") or {}
    if isinstance(per, dict) and per:
        columns = sorted({k for v in per.values() for k in v})
        print_table(
            "Per label",
            ["label", *columns],
            [[lb, *(_fmt(v.get(c)) for c in columns)] for lb, v in per.items()],
        )


def _fmt(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)
