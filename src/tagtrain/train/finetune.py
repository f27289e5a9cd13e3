"""Fine-tune the top of the backbone together with the head, from cached trunk outputs.

Starts from the fitted linear head (so epoch 0 is exactly the head-only model) and trains the
top units (:meth:`FeatureNet.top_parameters`) and the head with AdamW on a cosine schedule, on the
cached trunk outputs of every view (the trunk never runs again). Batch norm stays in inference
mode: with a few hundred images its batch statistics would be noisier than the pretrained ones.
The best epoch on validation is kept (early stopping); the caller compares it with the head-only
model on validation and keeps the better one. Works on copies; the inputs are not changed.

Shapes: ``trunks`` ``(M, C, h, w)``; ``y`` as in :mod:`tagtrain.train.head`; ``w`` ``(M,)``.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from tagtrain.train.features import FeatureNet
from tagtrain.train.head import Array, Task, _targets, loss_fn, probabilities, val_metric


@dataclass
class FinetuneFit:
    net: FeatureNet
    head: nn.Linear
    epoch: int  # the kept epoch (0: no epoch beat the starting point)
    val_loss: float
    val_metric: float
    curve: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class FinetuneSettings:
    epochs: int
    lr: float
    head_lr: float
    weight_decay: float
    batch_size: int
    label_smoothing: float
    seed: int


def clearly_better(
    fit: FinetuneFit, head_metric: float | None, head_loss: float | None, n_val: int
) -> bool:
    """Whether ``fit`` should replace the head-only model judged at ``head_metric`` and
    ``head_loss`` on ``n_val`` validation images: at least one more validation image right (or
    1 point of mAP) and a lower loss. The head it competes with is then refitted on train +
    validation, a gain the fine-tuned model (trained on train only) forgoes."""
    margin = max(1 / max(1, n_val), 0.01)
    return (
        fit.epoch > 0
        and fit.val_metric >= (head_metric or 0.0) + margin - 1e-9
        and fit.val_loss < (math.inf if head_loss is None else head_loss)
    )


def seconds_per_epoch(net: FeatureNet, head: nn.Linear, trunks: Tensor, batch_size: int) -> float:
    """Time one forward + backward batch of the top and extrapolate to an epoch of ``trunks``."""
    net, head = copy.deepcopy(net), copy.deepcopy(head)
    params = [*net.top_parameters(), *head.parameters()]
    net.eval()
    batch = trunks[:batch_size]
    start = time.perf_counter()
    head(net.top(batch)).sum().backward()
    elapsed = time.perf_counter() - start
    for p in params:
        p.grad = None
    return elapsed * math.ceil(len(trunks) / batch_size) * 1.15  # + optimiser and validation


def finetune(
    net: FeatureNet,
    head: nn.Linear,
    train: tuple[Tensor, Array, Array],
    val: tuple[Tensor, Array],
    *,
    task: Task,
    settings: FinetuneSettings,
    on_batch: Callable[[int, int, float], None],
) -> FinetuneFit:
    """Fine-tune copies of ``net``'s top and ``head``; ``on_batch(step, total, loss)`` after each
    batch (it may raise to cancel)."""
    net, head = copy.deepcopy(net), copy.deepcopy(head)
    trunks, y, w = train
    yt = _targets(task, y, torch.float32)
    wt = torch.from_numpy(np.asarray(w, dtype=np.float32))
    per_example = loss_fn(task, settings.label_smoothing)
    params = net.top_parameters()
    opt = torch.optim.AdamW(
        [
            {"params": params, "lr": settings.lr},
            {"params": list(head.parameters()), "lr": settings.head_lr},
        ],
        weight_decay=settings.weight_decay,
    )
    batches = math.ceil(len(trunks) / settings.batch_size)
    total = settings.epochs * batches
    schedule = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda step: 0.5 * (1 + math.cos(math.pi * min(step, total) / total))
    )
    gen = torch.Generator().manual_seed(settings.seed)
    start_loss, start_metric = _validate(net, head, val, task)
    best = FinetuneFit(copy.deepcopy(net), copy.deepcopy(head), 0, start_loss, start_metric)
    best.curve.append(
        {"phase": "finetune", "epoch": 0, "train_loss": None}
        | {"val_loss": start_loss, "val_metric": start_metric}
    )
    step = 0
    for epoch in range(1, settings.epochs + 1):
        net.eval()  # batch norm frozen, see the module docstring
        order = torch.randperm(len(trunks), generator=gen)
        running = 0.0
        for b in range(batches):
            idx = order[b * settings.batch_size : (b + 1) * settings.batch_size]
            loss = (per_example(head(net.top(trunks[idx])), yt[idx]) * wt[idx]).sum() / wt[
                idx
            ].sum()
            opt.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call]
            opt.step()
            schedule.step()
            step += 1
            running += loss.item() * len(idx)
            on_batch(step, total, loss.item())
        val_loss, metric = _validate(net, head, val, task)
        best.curve.append(
            {"phase": "finetune", "epoch": epoch, "train_loss": running / len(trunks)}
            | {"val_loss": val_loss, "val_metric": metric}
        )
        if metric > best.val_metric or (metric == best.val_metric and val_loss < best.val_loss):
            best.net, best.head = copy.deepcopy(net), copy.deepcopy(head)
            best.epoch, best.val_loss, best.val_metric = epoch, val_loss, metric
    best.net.backbone.requires_grad_(False)
    best.head.requires_grad_(False)
    return best


def _validate(
    net: FeatureNet, head: nn.Linear, val: tuple[Tensor, Array], task: Task
) -> tuple[float, float]:
    """(loss without smoothing, metric) on validation, comparable with the head's."""
    trunks, y = val
    net.eval()
    with torch.inference_mode():
        logits = head(net.top(trunks))
        loss = float(loss_fn(task, 0.0)(logits, _targets(task, y, torch.float32)).mean())
        probs = probabilities(task, logits).double().numpy()
    return loss, val_metric(task, y, probs)
