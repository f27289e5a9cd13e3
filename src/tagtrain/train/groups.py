"""Groups of images that must land in one split: near-duplicates and bursts of frames.

Two images are near-duplicates when their perceptual hashes (pHash: the signs, against their
median, of the 8x8 lowest frequencies of the 2-D DCT of a 32x32 grey thumbnail, 64 bits) differ in
at most ``max_distance`` bits. Re-encodes, resizes and exposure changes of one photo stay within
about 8 bits, while different photos differ in about half of them, even photos of different objects
on one plain background (where the simpler dHash, built on pixel-to-pixel gradients, confuses flat
regions). Crops of more than a few percent move the hash too far to be caught. Frames from one machine captured at most ``burst_s`` seconds after
the previous frame (chained) are one burst. A group is a connected set under both relations;
splitting by group keeps the test split free of near-copies of training images.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from datetime import UTC, datetime

import numpy as np
from numpy.typing import NDArray
from PIL import Image

THUMB = 32  # side of the grey thumbnail the DCT is taken of
HASH_SIZE = 8  # 8x8 lowest frequencies = 64 bits
MAX_DISTANCE = 8  # bits; 0..64
BURST_S = 5.0

_k = np.arange(THUMB)
#: The DCT-II basis: ``_DCT @ x`` transforms the columns of ``x`` (unnormalised; signs are all
#: that matter here).
_DCT = np.cos(np.pi * (2 * _k[None, :] + 1) * _k[:, None] / (2 * THUMB))[:HASH_SIZE]


def phash(picture: Image.Image) -> int:
    """The 64-bit perceptual hash of a picture (any mode), as a Python int."""
    grey = picture.convert("L").resize((THUMB, THUMB), Image.Resampling.BOX)
    pixels = np.asarray(grey, dtype=np.float64)
    low = (_DCT @ pixels @ _DCT.T).ravel()
    bits = low > np.median(low[1:])  # the DC term (overall brightness) left out of the median
    return int(np.packbits(bits).view(">u8")[0])


def hamming(hashes: Sequence[int]) -> NDArray[np.int64]:
    """``(N, N)`` pairwise bit distances of 64-bit hashes."""
    h = np.array(hashes, dtype=np.uint64)
    distances: NDArray[np.int64] = np.bitwise_count(h[:, None] ^ h[None, :]).astype(np.int64)
    return distances


def group_ids(
    hashes: Sequence[int],
    machines: Sequence[str | None],
    captured: Sequence[datetime | None],
    *,
    max_distance: int = MAX_DISTANCE,
    burst_s: float = BURST_S,
) -> NDArray[np.int64]:
    """``(N,)`` group index of each image (0..G-1, numbered by first appearance)."""
    n = len(hashes)
    if not len(machines) == len(captured) == n:
        raise ValueError("hashes, machines and captured must have one entry per image")
    parent = np.arange(n)

    def find(i: int) -> int:
        root = i
        while parent[root] != root:
            root = int(parent[root])
        while parent[i] != root:
            parent[i], i = root, int(parent[i])
        return root

    def union(a: int, b: int) -> None:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)

    for a, b in _near_pairs(hashes, max_distance):
        union(a, b)
    for a, b in _burst_pairs(machines, captured, burst_s):
        union(a, b)
    roots = np.array([find(i) for i in range(n)], dtype=np.int64)
    _, first = np.unique(roots, return_index=True)
    order = {int(roots[i]): g for g, i in enumerate(sorted(first))}
    return np.array([order[int(r)] for r in roots], dtype=np.int64)


def _near_pairs(hashes: Sequence[int], max_distance: int) -> list[tuple[int, int]]:
    """Index pairs (a < b) within ``max_distance`` bits, computed in row blocks to bound memory."""
    h = np.array(hashes, dtype=np.uint64)
    pairs: list[tuple[int, int]] = []
    block = 1024
    for start in range(0, h.size, block):
        rows = h[start : start + block]
        dist = np.bitwise_count(rows[:, None] ^ h[None, :])
        a, b = np.nonzero(dist <= max_distance)
        a = a + start
        keep = a < b
        pairs += list(zip(a[keep].tolist(), b[keep].tolist(), strict=True))
    return pairs


def _burst_pairs(
    machines: Sequence[str | None], captured: Sequence[datetime | None], burst_s: float
) -> list[tuple[int, int]]:
    """Consecutive frames of one machine at most ``burst_s`` apart."""
    by_machine: dict[str, list[tuple[float, int]]] = {}
    for i, (machine, at) in enumerate(zip(machines, captured, strict=True)):
        if machine is not None and at is not None:
            by_machine.setdefault(machine, []).append((_seconds(at), i))
    pairs: list[tuple[int, int]] = []
    for frames in by_machine.values():
        frames.sort()
        for (t0, i0), (t1, i1) in itertools.pairwise(frames):
            if t1 - t0 <= burst_s:
                pairs.append((i0, i1))
    return pairs


def _seconds(at: datetime) -> float:
    """POSIX seconds; a naive time is taken as UTC (what the store records)."""
    return (at if at.tzinfo else at.replace(tzinfo=UTC)).timestamp()
