"""train() end to end on real photos: the model it returns, the splits, the cache, cancelling,
unreadable images, and the test split never deciding anything."""

from __future__ import annotations

import copy
import csv
import hashlib
import io
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tagtrain.errors import BadInput, Cancelled, NotFound
from tagtrain.media import ImageLimits, decode_image, model_input
from tagtrain.train.backbone import get_backbone
from tagtrain.train.embeddings import EmbeddingCache, ViewKey
from tagtrain.train.features import Classifier, FeatureNet
from tagtrain.train.trainer import (
    Example,
    ProgressEvent,
    TrainConfig,
    TrainRequest,
    TrainResult,
    train,
)
from tests.conftest import COCO, trashnet_photos

N_TRAIN = 66  # 11 photos of each of the 6 classes


@dataclass
class Run:
    request: TrainRequest
    result: TrainResult
    loads: Counter[str]
    events: list[ProgressEvent]
    blobs: dict[str, bytes]
    cache: Path
    duplicate_ids: tuple[int, int]


def _reencode(data: bytes, quality: int = 60) -> bytes:
    buf = io.BytesIO()
    Image.open(io.BytesIO(data)).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _loader(blobs: dict[str, bytes], loads: Counter[str]) -> Callable[[str], bytes]:
    def load(sha: str) -> bytes:
        loads[sha] += 1
        return blobs[sha]

    return load


def _trashnet_request(paths: list[Path]) -> tuple[TrainRequest, dict[str, bytes]]:
    blobs: dict[str, bytes] = {}
    examples = []
    for i, path in enumerate(paths, start=1):
        data = path.read_bytes()
        blobs[_sha(data)] = data
        examples.append(Example(i, _sha(data), (path.parent.name,)))
    labels = tuple(sorted({p.parent.name for p in paths}))
    return TrainRequest("single_label", labels, tuple(examples)), blobs


def quiet_train(
    request: TrainRequest, load: Callable[[str], bytes], cache: Path, config: TrainConfig
) -> TrainResult:
    """``train`` without progress events or a stop request."""
    return train(
        request,
        load_image=load,
        cache_dir=cache,
        config=config,
        progress=lambda _e: None,
        should_stop=lambda: False,
    )


@pytest.fixture(scope="module")
def trashnet_run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    request, blobs = _trashnet_request(trashnet_photos(N_TRAIN))
    # A re-encoded copy of the first photo under another id: a near-duplicate.
    copy_data = _reencode(blobs[request.examples[0].sha256])
    blobs[_sha(copy_data)] = copy_data
    twin = Example(999, _sha(copy_data), request.examples[0].tags)
    request = TrainRequest(request.task, request.labels, (*request.examples, twin))
    loads: Counter[str] = Counter()
    events: list[ProgressEvent] = []
    cache = tmp_path_factory.mktemp("cache")
    result = train(
        request,
        load_image=_loader(blobs, loads),
        cache_dir=cache,
        config=TrainConfig(),
        progress=events.append,
        should_stop=lambda: False,
    )
    return Run(request, result, loads, events, blobs, cache, (1, 999))


def _inputs(paths: list[Path]) -> np.ndarray:
    return np.stack(
        [model_input(decode_image(p.read_bytes(), p.name, ImageLimits())[1], 224) for p in paths]
    )


@pytest.mark.slow
def test_the_model_classifies_held_out_photos(trashnet_run: Run) -> None:
    result = trashnet_run.result
    model = result.model
    assert not model.training
    assert not any(p.requires_grad for p in model.parameters())
    assert result.labels == trashnet_run.request.labels  # 11 per class, no UNKNOWN
    held_out = trashnet_photos(120)[N_TRAIN:]
    with torch.inference_mode():
        probs = model(torch.from_numpy(_inputs(held_out))).numpy()
    assert probs.shape == (len(held_out), 6) and probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    truth = np.array([result.labels.index(p.parent.name) for p in held_out])
    accuracy = float((probs.argmax(axis=1) == truth).mean())
    assert accuracy >= 0.5, accuracy  # chance is 1/6


@pytest.mark.slow
def test_the_result_is_complete_and_consistent(trashnet_run: Run) -> None:
    """67 images: cross-validated, so every image is scored (by a fold model that did not train
    on it) and the folds partition the images."""
    result = trashnet_run.result
    ids = [ex.image_id for ex in trashnet_run.request.examples]
    assert list(result.splits) == [f"fold {f}" for f in range(1, 6)]
    split_ids = [i for fold in result.splits.values() for i in fold]
    assert sorted(split_ids) == sorted(ids) and len(split_ids) == len(ids)
    assert all(10 <= len(fold) <= 17 for fold in result.splits.values())
    assert result.selection["evaluation"]["method"] == "cross-validation"
    assert result.selection["head"]["refit_on"] == "all images"
    assert not result.selection["finetune"]["ran"]
    assert result.metrics["task"] == "single_label" and result.metrics["n"] == len(ids)
    assert 0 <= result.metrics["accuracy"] <= 1
    assert result.thresholds == {"default": 0.0, "per_label": {}}
    assert [p["image_id"] for p in result.test_predictions] == ids
    assert result.test_inputs.shape == (10, 224, 224, 3)  # 15% of 67 for the int8 check
    assert result.test_inputs.dtype == result.golden.dtype == result.calibration.dtype == np.uint8
    assert result.golden.shape == (4, 224, 224, 3)
    assert len(result.calibration) == 64
    assert result.backbone == "efficientnet-lite0" and result.seconds > 0
    assert result.curves and {"phase", "epoch", "train_loss", "val_loss", "val_metric"} <= set(
        result.curves[0]
    )
    wrong = sum(not p["correct"] for p in result.test_predictions)
    assert wrong == round((1 - result.metrics["accuracy"]) * len(result.test_predictions))
    # Out-of-fold scores are not the shipped model's: it trained on every image, so it is
    # surer of them.
    with torch.inference_mode():
        shipped = result.model(torch.from_numpy(_inputs(trashnet_photos(N_TRAIN)))).numpy()
    truth = [result.labels.index(p.parent.name) for p in trashnet_photos(N_TRAIN)]
    oof = np.array(
        [[p["probabilities"][lb] for lb in result.labels] for p in result.test_predictions]
    )
    rows = np.arange(N_TRAIN)
    assert shipped[rows, truth].mean() > oof[rows, truth].mean()
    phases = [e.phase for e in trashnet_run.events]
    assert phases[0] == "prepare" and phases[-1] == "evaluate" and "head" in phases


@pytest.mark.slow
def test_near_duplicates_land_in_one_split(trashnet_run: Run) -> None:
    a, b = trashnet_run.duplicate_ids
    where = {i: s for s, ids in trashnet_run.result.splits.items() for i in ids}
    assert where[a] == where[b]
    assert trashnet_run.result.selection["groups"]["shared_groups"] >= 1


@pytest.mark.slow
def test_retraining_reuses_the_cache(trashnet_run: Run) -> None:
    loads: Counter[str] = Counter()
    start = time.perf_counter()
    again = quiet_train(
        trashnet_run.request, _loader(trashnet_run.blobs, loads), trashnet_run.cache, TrainConfig()
    )
    elapsed = time.perf_counter() - start
    first = trashnet_run.result
    assert again.splits == first.splits
    assert again.metrics == first.metrics
    # Only the check and calibration images are decoded again (for the package's inputs).
    assert len(loads) <= len(first.test_inputs) + len(first.calibration)
    assert sum(loads.values()) < sum(trashnet_run.loads.values())
    assert elapsed < first.seconds


def test_cancel_stops_within_a_batch(
    tmp_path: Path, two_class: tuple[TrainRequest, dict[str, bytes]]
) -> None:
    request, blobs = two_class
    calls = 0
    stop_at: float | None = None

    def should_stop() -> bool:
        nonlocal calls, stop_at
        calls += 1
        if calls >= 2 and stop_at is None:
            stop_at = time.perf_counter()
        return stop_at is not None

    with pytest.raises(Cancelled, match="canceled"):
        train(
            request,
            load_image=blobs.__getitem__,
            cache_dir=tmp_path,
            config=TrainConfig(batch_size=4),
            progress=lambda _e: None,
            should_stop=should_stop,
        )
    assert stop_at is not None and time.perf_counter() - stop_at < 5
    assert not list(tmp_path.rglob(".tmp-*"))  # no half-written cache entry


def _two_classes(request: TrainRequest) -> TrainRequest:
    """The request cut to 2 classes with 10+ photos each (needs 60+ round-robin photos)."""
    labels = request.labels[:2]
    examples = tuple(ex for ex in request.examples if ex.tags[0] in labels)
    return TrainRequest(request.task, labels, examples)


@pytest.fixture(scope="module")
def two_class() -> tuple[TrainRequest, dict[str, bytes]]:
    request, blobs = _trashnet_request(trashnet_photos(66))
    return _two_classes(request), blobs


def test_an_undecodable_blob_names_the_image(
    tmp_path: Path, two_class: tuple[TrainRequest, dict[str, bytes]]
) -> None:
    request, blobs = two_class
    bad = request.examples[3]
    broken = dict(blobs)
    broken[bad.sha256] = blobs[bad.sha256][:500]  # truncated JPEG
    with pytest.raises(
        BadInput, match=rf"image {bad.image_id} \(sha256 {bad.sha256[:12]}\).*cannot be decoded"
    ):
        quiet_train(request, broken.__getitem__, tmp_path, TrainConfig())


def test_a_missing_blob_names_the_image(
    tmp_path: Path, two_class: tuple[TrainRequest, dict[str, bytes]]
) -> None:
    request, blobs = two_class
    gone = request.examples[0]

    def load(sha: str) -> bytes:
        if sha == gone.sha256:
            raise NotFound(f"blob {sha} is missing")
        return blobs[sha]

    with pytest.raises(BadInput, match=rf"image {gone.image_id} .*could not be read: blob"):
        quiet_train(request, load, tmp_path, TrainConfig())


def test_images_with_none_of_the_labels_become_unknown(tmp_path: Path) -> None:
    request, blobs = _trashnet_request(trashnet_photos(66))
    labels = request.labels[:2]  # cardboard, glass; 11 photos each
    others = [ex for ex in request.examples if ex.tags[0] not in labels][:12]
    examples = [ex for ex in request.examples if ex.tags[0] in labels]
    untagged = [Example(ex.image_id, ex.sha256, ()) for ex in others]
    result = quiet_train(
        TrainRequest("single_label", labels, (*examples, *untagged)),
        blobs.__getitem__,
        tmp_path,
        TrainConfig(views=1),
    )
    assert result.labels == (*labels, "UNKNOWN")
    assert result.model(torch.from_numpy(result.golden)).shape == (len(result.golden), 3)
    assert "UNKNOWN" in result.metrics["per_label"]
    unknown_ids = {ex.image_id for ex in untagged}
    truths = [p["true"] for p in result.test_predictions if p["image_id"] in unknown_ids]
    assert truths and all(t == ["UNKNOWN"] for t in truths)


def _copies(blobs: dict[str, bytes], example: Example, n: int, first_id: int) -> list[Example]:
    """``n`` re-encodings of ``example``'s photo (near-duplicates: one group) under new ids."""
    out = []
    for k in range(n):
        data = _reencode(blobs[example.sha256], 40 + 5 * k)
        blobs[_sha(data)] = data
        out.append(Example(first_id + k, _sha(data), example.tags))
    return out


@pytest.mark.parametrize(
    ("cv_max_images", "message"),
    [
        (600, r"could not spread cardboard over folds; add more images that are not near-dup"),
        (0, r"could not spread cardboard over training and validation; add more images"),
    ],
)
def test_a_label_made_of_near_duplicates_is_refused(
    tmp_path: Path,
    two_class: tuple[TrainRequest, dict[str, bytes]],
    cv_max_images: int,
    message: str,
) -> None:
    """Eleven copies of one cardboard photo are one group: it cannot be in two folds (nor in
    both training and validation), so the fold models could not learn it."""
    request, source = two_class
    blobs = dict(source)
    glass = [ex for ex in request.examples if ex.tags == ("glass",)]
    cardboard = next(ex for ex in request.examples if ex.tags == ("cardboard",))
    examples = (*glass, *_copies(blobs, cardboard, 11, first_id=500))
    with pytest.raises(BadInput, match=message):
        quiet_train(
            TrainRequest("single_label", request.labels, examples),
            blobs.__getitem__,
            tmp_path,
            TrainConfig(views=1, cv_max_images=cv_max_images),
        )


def test_too_few_distinct_images_for_the_folds_are_refused(
    tmp_path: Path, two_class: tuple[TrainRequest, dict[str, bytes]]
) -> None:
    request, source = two_class
    blobs = dict(source)
    firsts = [next(ex for ex in request.examples if ex.tags == (lb,)) for lb in request.labels]
    examples = [c for i, ex in enumerate(firsts) for c in _copies(blobs, ex, 11, 500 + 100 * i)]
    with pytest.raises(BadInput, match="could not spread the images over 5 folds"):
        quiet_train(
            TrainRequest("single_label", request.labels, tuple(examples)),
            blobs.__getitem__,
            tmp_path,
            TrainConfig(views=1),
        )


def test_a_request_below_the_minimum_fails_before_any_work(tmp_path: Path) -> None:
    request, _ = _trashnet_request(trashnet_photos(12))
    with pytest.raises(BadInput, match="at least 10"):
        quiet_train(
            request, lambda _sha: pytest.fail("no image should be loaded"), tmp_path, TrainConfig()
        )


def _coco_request(n: int, labels: tuple[str, ...]) -> tuple[TrainRequest, dict[str, bytes]]:
    with (COCO / "labels.csv").open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))[:n]
    blobs: dict[str, bytes] = {}
    examples = []
    for i, row in enumerate(rows, start=1):
        data = (COCO / "images" / row["filename"]).read_bytes()
        blobs[_sha(data)] = data
        tags = tuple(t for t in row["tags"].split(";") if t)
        examples.append(Example(i, _sha(data), tags))
    return TrainRequest("multi_label", labels, tuple(examples)), blobs


def _swap_channels(data: bytes) -> bytes:
    rgb = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb[..., ::-1])).save(buf, format="PNG")
    return buf.getvalue()


@pytest.mark.slow
def test_the_test_split_decides_nothing(tmp_path: Path) -> None:
    """Train twice, the second time with every test image's colours swapped (new bytes, so new
    features): every choice (fine-tuning kept or not, thresholds, curves) must come out the same,
    while the test metrics move."""
    request, blobs = _coco_request(120, ("person", "vehicle", "animal"))
    config = TrainConfig(
        finetune_min_val_images=1, time_budget_s=120, finetune_epochs=3, cv_max_images=0
    )

    def run(req: TrainRequest, data: dict[str, bytes]) -> TrainResult:
        return quiet_train(req, data.__getitem__, tmp_path, config)

    first = run(request, blobs)
    test_ids = set(first.splits["test"])
    swapped = dict(blobs)
    examples = []
    for ex in request.examples:
        if ex.image_id in test_ids:
            data = _swap_channels(blobs[ex.sha256])
            swapped[_sha(data)] = data
            examples.append(Example(ex.image_id, _sha(data), ex.tags))
        else:
            examples.append(ex)
    second = run(TrainRequest(request.task, request.labels, tuple(examples)), swapped)

    assert first.selection["finetune"]["ran"]
    assert second.splits == first.splits
    assert second.thresholds == first.thresholds
    assert second.curves == first.curves
    assert second.selection == first.selection
    assert set(first.thresholds["per_label"]) == set(request.labels)
    assert second.metrics != first.metrics
    probs = second.model(torch.from_numpy(second.test_inputs)).numpy()
    assert probs.shape == (len(test_ids), 3) and probs.min() >= 0 and probs.max() <= 1
    # Held out, the stored predictions are the shipped model's own outputs on the test inputs.
    assert first.selection["evaluation"]["method"] == "holdout"
    assert [p["image_id"] for p in second.test_predictions] == second.splits["test"]
    stored = [[p["probabilities"][lb] for lb in second.labels] for p in second.test_predictions]
    np.testing.assert_allclose(stored, probs, atol=1e-5)
    assert second.metrics["n"] == len(test_ids)


@pytest.mark.slow
def test_a_multi_label_dataset_is_cross_validated(tmp_path: Path) -> None:
    """120 coco photos, default settings: every photo scored out of fold, each fold's
    predictions cut at its own thresholds, and the report's F1 is the one those predictions
    give."""
    request, blobs = _coco_request(120, ("person", "vehicle", "animal"))
    result = quiet_train(request, blobs.__getitem__, tmp_path, TrainConfig(views=1))
    assert result.selection["evaluation"]["method"] == "cross-validation"
    assert result.metrics["n"] == 120 and len(result.test_predictions) == 120
    per_label = result.thresholds["per_label"]
    assert set(per_label) == set(request.labels) and all(0 < t < 1 for t in per_label.values())
    for label in request.labels:
        tp = sum(label in p["true"] and label in p["predicted"] for p in result.test_predictions)
        said = sum(label in p["predicted"] for p in result.test_predictions)
        have = sum(label in p["true"] for p in result.test_predictions)
        f1 = 2 * tp / (said + have) if said + have else 0.0
        reported = result.metrics["per_label"][label]
        assert reported["f1"] == pytest.approx(f1)
        assert reported["threshold"] == pytest.approx(per_label[label])
    # Some prediction disagrees with the shipped thresholds: folds chose their own.
    shipped = [
        sorted(lb for lb, p in row["probabilities"].items() if p >= per_label[lb])
        for row in result.test_predictions
    ]
    assert shipped != [sorted(row["predicted"]) for row in result.test_predictions]


def test_a_copied_feature_net_trains_its_own_weights() -> None:
    spec = get_backbone()
    net = FeatureNet(spec.create(pretrained=False), cut=15, taps=[14])
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        before = net(x)
    twin = copy.deepcopy(net)
    for p in twin.top_parameters():
        p.data.add_(0.5)
    with torch.no_grad():
        assert torch.equal(net(x), before)
        assert not torch.allclose(twin(x), before)
        trunk = net.trunk(x)
        assert torch.equal(net.top(trunk), before)
    assert net.feature_dim == 192 + 1280 and before.shape == (2, net.feature_dim)
    # Each tap is unit-norm: the 192 trunk channels, then the 1280 of the last unit.
    np.testing.assert_allclose(before[:, :192].norm(dim=1).numpy(), 1.0, rtol=1e-5)
    head = torch.nn.Linear(net.feature_dim, 3)
    model = Classifier(spec, net, head, "multi_label").eval()
    image = torch.randint(0, 256, (2, 64, 64, 3), dtype=torch.uint8)
    out = model(image)
    assert out.shape == (2, 3) and bool(((out > 0) & (out < 1)).all())


def test_the_cache_round_trips_and_ignores_damaged_entries(tmp_path: Path) -> None:
    net = FeatureNet(get_backbone().create(pretrained=False), cut=15, taps=[14])
    cache = EmbeddingCache(tmp_path, backbone="b", net=net, augment_digest="d" * 16)
    key = ViewKey("ab" * 32, 1)
    assert cache.load_features(key) is None
    cache.save(key, np.ones((4, 2, 2), np.float32), np.arange(3, dtype=np.float32))
    np.testing.assert_array_equal(cache.load_features(key), [0, 1, 2])
    np.testing.assert_array_equal(cache.load_trunk(key), np.ones((4, 2, 2)))
    path = next(tmp_path.rglob("*.f.npy"))
    path.write_bytes(b"garbage")
    assert cache.load_features(key) is None
    cache.save_phash("cd" * 32, 0xFFFF0000FFFF0000)
    assert cache.load_phash("cd" * 32) == 0xFFFF0000FFFF0000
    assert not list(tmp_path.rglob(".tmp-*"))
