"""Splits that do not leak: near-duplicate and burst groups, stratification, determinism."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from PIL import Image, ImageEnhance

from tagtrain.train.groups import group_ids, hamming, phash
from tagtrain.train.splits import TEST, TRAIN, VAL, Fractions, stratified_split
from tests.conftest import trashnet_photos


def _reencoded(img: Image.Image, quality: int) -> Image.Image:
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=quality)
    return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")


def test_phash_keeps_copies_close_and_different_photos_apart() -> None:
    photos = [Image.open(p).convert("RGB") for p in trashnet_photos(24)]
    hashes = [phash(p) for p in photos]
    distances = hamming(hashes)
    off_diagonal = distances[~np.eye(len(hashes), dtype=bool)]
    assert off_diagonal.min() > 8  # 24 different photos on one white board: never "near"
    original = photos[0]
    w, h = original.size
    copies = [
        original.resize((w // 2, h // 2)),
        _reencoded(original, 35),
        ImageEnhance.Brightness(original).enhance(1.25),
        original.convert("L"),
    ]
    for copy in copies:
        assert bin(phash(copy) ^ hashes[0]).count("1") <= 8


def test_near_duplicates_and_bursts_form_groups() -> None:
    photos = [Image.open(p).convert("RGB") for p in trashnet_photos(6)]
    pictures = [*photos, _reencoded(photos[2], 40)]  # 6 is a copy of 2
    hashes = [phash(p) for p in pictures]
    t0 = datetime(2024, 5, 1, 12, 0, 0)
    machines = [None, "cam-1", "cam-1", None, "cam-1", "cam-2", None]
    captured = [
        None,
        t0,
        t0 + timedelta(seconds=30),
        None,
        (t0 + timedelta(seconds=33)).replace(tzinfo=UTC),  # aware and naive (UTC) mix
        t0 + timedelta(seconds=31),  # close in time but another machine
        None,
    ]
    groups = group_ids(hashes, machines, captured, max_distance=8, burst_s=5.0)
    assert groups[2] == groups[6]  # the re-encoded copy
    assert groups[2] == groups[4]  # cam-1 frames 3 s apart
    assert groups[1] != groups[2]  # cam-1 frames 30 s apart
    assert groups[5] != groups[2]
    assert len(set(groups.tolist())) == 5
    assert groups[0] == 0  # numbered by first appearance


def test_a_burst_chains_frame_to_frame() -> None:
    t0 = datetime(2024, 5, 1, tzinfo=UTC)
    captured: list[datetime | None] = [t0 + timedelta(seconds=4 * i) for i in range(5)]
    groups = group_ids([i * 0xFFFF for i in range(5)], ["m"] * 5, captured, max_distance=0)
    assert set(groups.tolist()) == {0}


def _single_labels(rng: np.random.Generator, counts: list[int]) -> np.ndarray:
    y = np.repeat(np.arange(len(counts)), counts)
    rng.shuffle(y)
    return np.eye(len(counts), dtype=np.int64)[y]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_single_label_split_is_stratified(seed: int) -> None:
    rng = np.random.default_rng(seed)
    counts = [50, 30, 12, 80]
    labels = _single_labels(rng, counts)
    split = stratified_split(labels, np.arange(len(labels)), Fractions(0.15, 0.15), seed)
    for k, n in enumerate(counts):
        in_class = labels[:, k] == 1
        for s, share in ((TRAIN, 0.7), (VAL, 0.15), (TEST, 0.15)):
            assert abs((split[in_class] == s).sum() - share * n) <= 1
    assert abs((split == TEST).mean() - 0.15) < 0.02


def test_groups_never_straddle_splits_and_stratification_holds() -> None:
    rng = np.random.default_rng(7)
    labels = _single_labels(rng, [60, 60, 60])
    groups = np.arange(len(labels))
    # 20 groups of 3 same-class images (bursts), the rest alone
    same_class = [np.flatnonzero(labels[:, k] == 1) for k in range(3)]
    for g in range(20):
        members = same_class[g % 3][3 * (g // 3) : 3 * (g // 3) + 3]
        groups[members] = 1000 + g
    split = stratified_split(labels, groups, Fractions(), seed=3)
    for g in np.unique(groups):
        assert len(set(split[groups == g].tolist())) == 1
    for k in range(3):
        assert abs((split[labels[:, k] == 1] == TEST).sum() - 9) <= 3


def test_multi_label_iterative_stratification_spreads_rare_labels() -> None:
    rng = np.random.default_rng(0)
    n = 300
    labels = (rng.random((n, 5)) < [0.5, 0.3, 0.1, 0.05, 0.04]).astype(np.int64)
    labels[:40] = 0  # images with no label at all
    split = stratified_split(labels, np.arange(n), Fractions(0.15, 0.15), seed=0)
    for k in range(5):
        positives = labels[:, k] == 1
        for s, share in ((TRAIN, 0.7), (VAL, 0.15), (TEST, 0.15)):
            assert abs((split[positives] == s).sum() - share * positives.sum()) <= 1.5
    assert abs((split == TRAIN).sum() - 0.7 * n) <= 3
    assert set(split[:40].tolist()) <= {TRAIN, VAL, TEST}


def test_same_seed_same_split_other_seed_other_split() -> None:
    rng = np.random.default_rng(1)
    labels = _single_labels(rng, [40, 40, 40])
    groups = np.arange(120)
    a = stratified_split(labels, groups, Fractions(), seed=5)
    b = stratified_split(labels, groups, Fractions(), seed=5)
    c = stratified_split(labels, groups, Fractions(), seed=6)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_minimum_sized_labels_reach_every_split() -> None:
    labels = np.eye(2, dtype=np.int64)[np.repeat([0, 1], 10)]
    split = stratified_split(labels, np.arange(20), Fractions(), seed=0)
    for k in range(2):
        assert set(split[labels[:, k] == 1].tolist()) == {TRAIN, VAL, TEST}


@pytest.mark.parametrize(("val", "test"), [(0.0, 0.2), (0.2, 0.0), (0.5, 0.5), (-0.1, 0.2)])
def test_fractions_are_checked(val: float, test: float) -> None:
    with pytest.raises(ValueError, match="fractions"):
        Fractions(val, test)


def test_split_checks_shapes() -> None:
    with pytest.raises(ValueError, match=r"\(N, C\)"):
        stratified_split(np.zeros(5, dtype=np.int64), np.arange(5), Fractions(), 0)
    assert (
        stratified_split(
            np.zeros((0, 2), dtype=np.int64), np.zeros(0, dtype=np.int64), Fractions(), 0
        ).size
        == 0
    )
