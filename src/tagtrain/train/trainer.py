"""``train()``: a snapshot in, a trained and evaluated classifier out (no store, no files but the
embedding cache).

The stages, each in its own module:

1. **check** (:mod:`.examples`): refuse below the minimums, collect warnings.
2. **prepare**: decode every image (:mod:`.images`), perceptual-hash it and extract the plain
   view's features (:mod:`.embeddings`, cached per view).
3. **split** (:mod:`.groups`, :mod:`.splits`): near-duplicates and bursts grouped, then
   iteratively stratified train / validation / test; or, for a dataset of at most
   ``cv_max_images``, ``cv_folds`` folds for cross-validation (:mod:`.crossval`).
4. **features**: the augmented views (:mod:`.augment`) of the images the head trains on, cached.
5. **head** (:mod:`.head`): held out, fitted on train (its L2 strength chosen on validation when
   several are configured), judged on validation, then refitted on train + validation;
   cross-validated, each fold's head chosen and scored the same way without its test fold, then
   the shipped head fitted on every image.
6. **finetune** (:mod:`.finetune_stage`, held out only): if allowed, if the validation split is big
   enough to judge it and if the time budget left covers it; kept only if clearly better on
   validation.
7. **evaluate** (:mod:`.evaluate`): the test split, touched here for the first time, through the
   final model, or the out-of-fold scores (:func:`tagtrain.package.metrics.report`).

Everything that decides (the head's strength, fine-tuning kept or not, its best epoch, the
multi-label thresholds) never sees the labels of the images it is scored on: held out, the test
split's features are read once, in the last stage. A parity check runs the returned module on the
golden inputs and compares with the cached-feature path.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn

from tagtrain.errors import BadInput, TagtrainError
from tagtrain.media import model_input
from tagtrain.train.augment import make_view
from tagtrain.train.backbone import get_backbone
from tagtrain.train.config import TrainConfig
from tagtrain.train.crossval import cross_validate
from tagtrain.train.embeddings import EmbeddingCache, ViewKey, run_batches
from tagtrain.train.evaluate import Scores, evaluate, holdout_scores
from tagtrain.train.examples import (
    UNKNOWN,
    Encoded,
    Example,
    TrainRequest,
    check_request,
    encode,
)
from tagtrain.train.features import FeatureNet, Task, fused_copy
from tagtrain.train.finetune_stage import run_stage
from tagtrain.train.groups import group_ids, phash
from tagtrain.train.head import HeadFit, HeadSettings
from tagtrain.train.images import SnapshotImages
from tagtrain.train.progress import Progress, ProgressEvent
from tagtrain.train.rows import FeatureRows
from tagtrain.train.splits import (
    SPLITS,
    TRAIN,
    VAL,
    require_spread,
    stratified_folds,
    stratified_split,
)

__all__ = [
    "UNKNOWN",
    "Example",
    "ProgressEvent",
    "TrainConfig",
    "TrainRequest",
    "TrainResult",
    "check_request",
    "train",
]

Array = NDArray[Any]
EVALUATE_RESERVE_S = 1.0  # budget kept back for evaluation after fine-tuning


@dataclass
class TrainResult:
    """A trained classifier and its evaluation. ``model``: uint8 ``(N, H, W, 3)`` ->
    probabilities ``(N, K)`` float32, eval mode, normalisation inside; ``labels``: its output
    order (single-label may end with ``UNKNOWN``); ``metrics``: the report on the test split."""

    model: nn.Module
    task: Task
    labels: tuple[str, ...]
    thresholds: dict[str, Any]
    metrics: dict[str, Any]
    curves: list[dict[str, Any]]
    #: Image ids per split: ``train``, ``val``, ``test``; cross-validated ``fold 1``, ...
    splits: dict[str, list[int]]
    test_predictions: list[dict[str, Any]]
    calibration: NDArray[np.uint8]
    golden: NDArray[np.uint8]
    test_inputs: NDArray[np.uint8]
    warnings: list[str]
    backbone: str
    seconds: float
    #: What was chosen on validation and why (head strength, fine-tuning, groups found).
    selection: dict[str, Any] = field(default_factory=dict)


def train(
    request: TrainRequest,
    *,
    load_image: Callable[[str], bytes],
    cache_dir: Path,
    config: TrainConfig,
    progress: Callable[[ProgressEvent], None],
    should_stop: Callable[[], bool],
) -> TrainResult:
    """Train a classifier on ``request`` (see the module docstring for the stages).

    Raises :class:`~tagtrain.errors.BadInput` for a request below the minimums or an image that
    cannot be read, and :class:`~tagtrain.errors.Cancelled` soon after ``should_stop()`` turns
    true (it is asked between batches)."""
    started = time.monotonic()
    warnings = check_request(request)
    run = _Run(request, encode(request), config, Progress(progress, should_stop), started)
    run.load(load_image, cache_dir)
    run.prepare()
    run.split()
    run.augmented_views()
    run.fit_head()
    run.maybe_finetune()
    return run.result(warnings)


class _Run:
    """The state of one training as it moves through the stages."""

    def __init__(
        self,
        request: TrainRequest,
        data: Encoded,
        config: TrainConfig,
        progress: Progress,
        started: float,
    ) -> None:
        self.request, self.data, self.config, self.progress = request, data, config, progress
        self.started = started
        self.task: Task = request.task
        self.n = len(data.examples)
        self.features: dict[ViewKey, Array] = {}
        self.selection: dict[str, Any] = {}
        self.curves: list[dict[str, Any]] = []

    # --- stages ----------------------------------------------------------------------------------

    def load(self, load_image: Callable[[str], bytes], cache_dir: Path) -> None:
        torch.set_num_threads(self.config.threads)
        torch.manual_seed(self.config.seed)
        self.progress.step("prepare", 0, self.n, message="loading the backbone")
        self.spec = get_backbone(self.config.backbone)
        backbone = self.spec.create(pretrained=True).requires_grad_(False)
        last = len(backbone.units()) - 1
        cut = last + 1 - self.config.top_units
        taps = [last - t for t in self.config.extra_taps]
        self.net = FeatureNet(backbone, cut=cut, taps=taps).eval()
        self.fast_net = FeatureNet(fused_copy(backbone), cut=cut, taps=taps).eval()
        self.normalize = self.spec.input_module()
        self.cache = EmbeddingCache(
            cache_dir,
            backbone=self.spec.name,
            net=self.net,
            augment_digest=self.config.augment.digest(),
        )
        self.images = SnapshotImages(load_image, self.data.examples, self.spec.input_size)
        self.rows = FeatureRows(
            self.data,
            self.features,
            self.cache,
            views=self.config.views,
            augmented_weight=self.config.augmented_weight,
        )

    def prepare(self) -> None:
        """Perceptual hashes and plain-view features of every image (cached ones not decoded)."""
        hashes: list[int] = [0] * self.n
        size = self.spec.input_size

        def inputs() -> Iterator[tuple[ViewKey, NDArray[np.uint8]]]:
            for i, ex in enumerate(self.data.examples):
                key = ViewKey(ex.sha256, 0)
                known, feats = self.cache.load_phash(ex.sha256), self.cache.load_features(key)
                if feats is not None:
                    self.features[key] = feats
                if known is None or feats is None:
                    picture = self.images.picture(i)
                    if known is None:
                        known = phash(picture)
                        self.cache.save_phash(ex.sha256, known)
                    plain = model_input(picture, size)
                    self.images.keep_plain(i, plain)
                    if feats is None:
                        yield key, plain
                hashes[i] = known
                if (i + 1) % self.config.batch_size == 0:
                    self.progress.step("prepare", i + 1, self.n, message="decoding, plain views")

        self.features |= self._extract(inputs())
        self.progress.step("prepare", self.n, self.n, message="plain views done")
        self.hashes = hashes

    def split(self) -> None:
        ex = self.data.examples
        groups = group_ids(
            self.hashes,
            [e.machine for e in ex],
            [e.captured_at for e in ex],
            max_distance=self.config.near_duplicate_bits,
            burst_s=self.config.burst_s,
        )
        sizes = np.bincount(groups)
        self.selection["groups"] = {
            "images_in_shared_groups": int(sizes[sizes > 1].sum()),
            "shared_groups": int((sizes > 1).sum()),
        }
        labels = self.data.label_matrix()
        self.cross_validating = self.n <= self.config.cv_max_images
        if self.cross_validating:
            self._split_folds(labels, groups)
        else:
            self._split_holdout(labels, groups)
        self._pick_package_images()
        self.images.retain(set(self.check_idx.tolist()) | set(self.calibration_idx.tolist()))

    def _split_holdout(self, labels: Array, groups: NDArray[np.int64]) -> None:
        assignment = stratified_split(labels, groups, self.config.fractions, self.config.seed)
        self.index = {s: np.flatnonzero(assignment == k) for k, s in enumerate(SPLITS)}
        self.fit_idx = self.index["train"]
        self.selection["evaluation"] = {
            "method": "holdout",
            "test_images": int(self.index["test"].size),
        }
        require_spread(
            self.data.classes,
            [labels[assignment == s] for s in (TRAIN, VAL)],
            "training and validation",
        )

    def _split_folds(self, labels: Array, groups: NDArray[np.int64]) -> None:
        k = self.config.cv_folds
        self.folds = stratified_folds(labels, groups, k, self.config.seed)
        self.index = {f"fold {f + 1}": np.flatnonzero(self.folds == f) for f in range(k)}
        self.fit_idx = np.arange(self.n)
        self.selection["evaluation"] = {
            "method": "cross-validation",
            "folds": k,
            "why": f"datasets of up to {self.config.cv_max_images} images are cross-validated "
            f"({self.n} here): every image is scored by a model that did not train on it, and "
            "the shipped model trains on all of them",
        }
        if any(idx.size == 0 for idx in self.index.values()):
            raise BadInput(
                f"could not spread the images over {k} folds: most of them are near-duplicates "
                "of each other; add more distinct images"
            )
        # Each fold's model trains on the other folds: a label must be in at least two folds.
        require_spread(self.data.classes, [labels[self.folds != f] for f in range(k)], "folds")

    def _pick_package_images(self) -> None:
        """The package's calibration images (training images) and, cross-validated, the images
        its int8 model is checked on: ones calibration did not use, while there are any (held
        out, the check images are the test split)."""
        rng = np.random.default_rng(self.config.seed)
        k = min(self.config.calibration_images, self.fit_idx.size)
        self.calibration_idx = np.sort(rng.choice(self.fit_idx, size=k, replace=False))
        if not self.cross_validating:
            self.check_idx = self.index["test"]
            return
        size = max(self.config.golden_images, round(self.config.test_fraction * self.n))
        others = rng.permutation(np.setdiff1d(self.fit_idx, self.calibration_idx))
        top_up = rng.permutation(self.calibration_idx)
        self.check_idx = np.sort(np.concatenate([others, top_up])[:size])

    def augmented_views(self) -> None:
        views = range(1, self.config.views)
        train_idx = self.fit_idx
        total = int(train_idx.size)
        if not views:
            return

        def inputs() -> Iterator[tuple[ViewKey, NDArray[np.uint8]]]:
            for done, i in enumerate(train_idx, start=1):
                sha = self.data.examples[i].sha256
                missing = []
                for v in views:
                    key = ViewKey(sha, v)
                    feats = self.cache.load_features(key)
                    if feats is None:
                        missing.append(key)
                    else:
                        self.features[key] = feats
                if missing:
                    picture = self.images.picture(int(i))
                    for key in missing:
                        yield key, self._view(picture, key)
                if done % self.config.batch_size == 0:
                    self.progress.step("features", done, total, message="augmented views")

        self.features |= self._extract(inputs())
        self.progress.step("features", total, total, message="augmented views done")

    def fit_head(self) -> None:
        self.head = HeadSettings(
            self.task, self.data.classes, self.config.head_c, self.config.head_label_smoothing
        )
        if self.cross_validating:
            self._cross_validate()
            return
        train, val = self.rows.view_rows(self.fit_idx), self.rows.plain_rows(self.index["val"])

        def on_fit(i: int, total: int, fit: HeadFit) -> None:
            self.progress.step("head", i, total, loss=fit.val_loss, metric=fit.val_metric)

        best = self.head.select(train, val, on_fit)
        self.curves += [row | {"c": best.c} for row in best.curve]
        self.head_fit = best
        self.val_head = best.head  # trained on train only: what validation judges
        both = (
            np.concatenate([train[0], val[0]]),
            np.concatenate([train[1], val[1]]),
            np.concatenate([train[2], np.ones(len(val[1]))]),  # plain views weigh 1
        )
        self.final_net, self.final_head = self.net, self.head.fit(both, best.c).head
        self.selection["head"] = {
            "c": best.c,
            "val_metric": best.val_metric,
            "val_loss": best.val_loss,
            "refit_on": "train+val",
        }
        self.selection["chosen"] = "head"

    def _cross_validate(self) -> None:
        def on_fold(done: int, total: int, fit: HeadFit) -> None:
            self.progress.step(
                "head",
                done,
                total + 1,
                loss=fit.val_loss,
                metric=fit.val_metric,
                message=f"cross-validation: fold {done} of {total}",
            )

        cv = cross_validate(
            self.folds,
            np.asarray(self.data.targets),
            view_rows=self.rows.view_rows,
            plain_rows=self.rows.plain_rows,
            head=self.head,
            on_fold=on_fold,
        )
        final = self.head.fit(self.rows.view_rows(self.fit_idx), cv.c)
        self.progress.step("head", len(cv.folds) + 1, len(cv.folds) + 1, message="final head")
        self.curves += cv.curve
        self.cv_scores = cv.scores
        self.final_net, self.final_head = self.net, final.head
        self.selection["head"] = {"c": cv.c, "folds": cv.folds, "refit_on": "all images"}
        self.selection["chosen"] = "head"

    def maybe_finetune(self) -> None:
        if self.cross_validating:
            self.selection["finetune"] = {
                "ran": False,
                "why": "cross-validated datasets are trained head-only: telling whether "
                "fine-tuning helps takes a validation split of "
                f"{self.config.finetune_min_val_images} images or more",
            }
            return
        spent = time.monotonic() - self.started
        outcome = run_stage(
            self.net,
            self.head_fit,
            self.rows,
            (self.fit_idx, self.index["val"]),
            task=self.task,
            config=self.config,
            seconds_left=self.config.time_budget_s - spent - EVALUATE_RESERVE_S,
            progress=self.progress,
        )
        self.selection["finetune"] = outcome.selection
        self.curves += outcome.curve
        if outcome.kept is not None:
            self.final_net, self.final_head = outcome.kept.net, outcome.kept.head
            self.val_head = outcome.kept.head
            self.selection["chosen"] = "finetune"

    def result(self, warnings: list[str]) -> TrainResult:
        if self.cross_validating:
            scores: Scores = self.cv_scores
        else:
            scores = holdout_scores(
                self.data,
                self.index,
                final_head=self.final_head,
                val_head=self.val_head,
                features_of=self._final_features,
            )
        done = evaluate(
            self.data,
            scores,
            spec=self.spec,
            final_net=self.final_net,
            final_head=self.final_head,
            features_of=self._final_features,
            images=self.images,
            check_idx=self.check_idx,
            golden_images=self.config.golden_images,
            progress=self.progress,
        )
        ids = [ex.image_id for ex in self.data.examples]
        return TrainResult(
            model=done.model,
            task=self.task,
            labels=self.data.classes,
            thresholds=done.thresholds,
            metrics=done.metrics,
            curves=self.curves,
            splits={s: [ids[i] for i in idx] for s, idx in self.index.items()},
            test_predictions=done.test_predictions,
            calibration=np.stack([self.images.plain(int(i)) for i in self.calibration_idx]),
            golden=done.golden,
            test_inputs=done.test_inputs,
            warnings=warnings,
            backbone=self.spec.name,
            seconds=time.monotonic() - self.started,
            selection=self.selection,
        )

    # --- helpers ---------------------------------------------------------------------------------

    def _extract(self, inputs: Iterator[tuple[ViewKey, NDArray[np.uint8]]]) -> dict[ViewKey, Array]:
        return run_batches(
            self.fast_net,
            self.normalize,
            inputs,
            cache=self.cache,
            batch_size=self.config.batch_size,
            on_batch=lambda _done: self.progress.check(),
        )

    def _view(self, picture: Any, key: ViewKey) -> NDArray[np.uint8]:
        return make_view(
            picture,
            sha256=key.sha256,
            view=key.view,
            config=self.config.augment,
            size=self.spec.input_size,
        )

    def _final_features(self, idx: NDArray[np.int64]) -> torch.Tensor:
        """The final network's features of the plain views of ``idx``, from the cache: the stored
        features, or the fine-tuned top run on the stored trunk outputs."""
        with torch.inference_mode():
            if self.final_net is self.net:
                return torch.from_numpy(self.rows.plain_rows(idx)[0])
            trunks = self.rows.trunks(self.rows.plain_keys(idx))
            if trunks is None:
                raise TagtrainError("the embedding cache lost entries during training")
            features: torch.Tensor = self.final_net.top(trunks)
            return features
