"""The fine-tuning stage of a held-out training: whether it may run (the settings, the validation
split's size, the cached trunk outputs, the time budget left), the run (:func:`.finetune.finetune`)
and whether its result replaces the head (:func:`.finetune.clearly_better`)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from tagtrain.train.config import TrainConfig
from tagtrain.train.features import FeatureNet, Task
from tagtrain.train.finetune import (
    FinetuneFit,
    FinetuneSettings,
    clearly_better,
    finetune,
    seconds_per_epoch,
)
from tagtrain.train.head import HeadFit
from tagtrain.train.progress import Progress
from tagtrain.train.rows import FeatureRows

Index = NDArray[np.int64]


@dataclass
class Outcome:
    """``selection``: what the report says about the stage; ``kept``: the fine-tuned model when
    it replaces the head; ``curve``: its epochs, when it ran."""

    selection: dict[str, Any]
    kept: FinetuneFit | None = None
    curve: list[dict[str, Any]] = field(default_factory=list)


def run_stage(
    net: FeatureNet,
    head_fit: HeadFit,
    rows: FeatureRows,
    split: tuple[Index, Index],
    *,
    task: Task,
    config: TrainConfig,
    seconds_left: float,
    progress: Progress,
) -> Outcome:
    """Fine-tune ``net``'s top from ``head_fit`` (the head validation judged) on the training
    images of ``split`` (train, val) if the settings, the validation split and ``seconds_left``
    allow it; keep it only if it is clearly better on validation."""
    train_idx, val_idx = split
    if not config.finetune:
        return Outcome({"ran": False, "why": "turned off in the settings"})
    if val_idx.size < config.finetune_min_val_images:
        return Outcome(
            {
                "ran": False,
                "why": f"the validation split ({val_idx.size} images) is too small to tell "
                f"whether fine-tuning helps (at least {config.finetune_min_val_images} needed)",
            }
        )
    train_keys = rows.view_keys(train_idx)
    trunks, val_trunks = rows.trunks(train_keys), rows.trunks(rows.plain_keys(val_idx))
    if trunks is None or val_trunks is None:
        return Outcome({"ran": False, "why": "trunk outputs missing in cache"})
    epoch_s = seconds_per_epoch(net, head_fit.head, trunks, config.batch_size)
    epoch_s += epoch_s * val_idx.size / max(1, len(train_keys)) / 3  # the validation pass
    epochs = min(config.finetune_epochs, math.floor(seconds_left / epoch_s))
    if epochs < config.finetune_min_epochs:
        why = f"time budget: {max(seconds_left, 0):.1f} s left, {epoch_s:.1f} s per epoch"
        return Outcome({"ran": False, "why": why})

    def on_batch(step: int, total: int, loss: float) -> None:
        progress.step("finetune", step, total, loss=loss)

    _, y, w = rows.view_rows(train_idx)
    fit = finetune(
        net,
        head_fit.head,
        (trunks, y, w),
        (val_trunks, rows.plain_rows(val_idx)[1]),
        task=task,
        settings=_settings(config, epochs),
        on_batch=on_batch,
    )
    better = clearly_better(fit, head_fit.val_metric, head_fit.val_loss, int(val_idx.size))
    selection = {
        "ran": True,
        "epochs": epochs,
        "best_epoch": fit.epoch,
        "val_metric": fit.val_metric,
        "val_loss": fit.val_loss,
        "kept": better,
    }
    return Outcome(selection, fit if better else None, fit.curve)


def _settings(config: TrainConfig, epochs: int) -> FinetuneSettings:
    return FinetuneSettings(
        epochs=epochs,
        lr=config.finetune_lr,
        head_lr=config.finetune_head_lr,
        weight_decay=config.finetune_weight_decay,
        batch_size=config.batch_size,
        label_smoothing=config.label_smoothing,
        seed=config.seed,
    )
