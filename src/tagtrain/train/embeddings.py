"""The on-disk cache of backbone outputs per image view, and batched extraction into it.

An entry is keyed by the image's sha256, the backbone and where it is cut (:class:`FeatureNet`'s
``cut`` and ``taps``), the view index and, for augmented views (index >= 1), the augmentation
settings' digest. It holds the trunk output (what fine-tuning starts from) and the pooled features
(what the head trains on) as two ``.npy`` files, written to a temp name and renamed, so a killed job
never leaves half an entry. Retraining with the same settings therefore decodes no image it has
seen and runs no convolution: only the head is fitted again.

The perceptual hash of each image (for near-duplicate grouping) is cached beside, keyed by sha256.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from numpy.typing import NDArray

from tagtrain.files import write_atomic
from tagtrain.train.features import FeatureNet

Float32Array = NDArray[np.float32]
#: Bumped whenever the code changes what a cached entry holds for the same key.
CACHE_VERSION = 2


@dataclass(frozen=True)
class ViewKey:
    sha256: str
    view: int


class EmbeddingCache:
    """Files under ``root``: ``phash/ab/<sha>.txt`` and ``<space>/<aug>/ab/<sha>_v<i>.{t,f}.npy``
    where ``space`` names the backbone and cut, and ``aug`` is ``plain`` for view 0."""

    def __init__(self, root: Path, *, backbone: str, net: FeatureNet, augment_digest: str) -> None:
        self.root = root
        taps = ".".join(map(str, net.taps))
        self.space = root / backbone / f"v{CACHE_VERSION}-cut{net.cut}-taps{taps}"
        self.augment_digest = augment_digest

    def _stem(self, key: ViewKey) -> Path:
        aug = "plain" if key.view == 0 else self.augment_digest
        return self.space / aug / key.sha256[:2] / f"{key.sha256}_v{key.view}"

    def load_features(self, key: ViewKey) -> Float32Array | None:
        return _load(self._stem(key).with_suffix(".f.npy"))

    def load_trunk(self, key: ViewKey) -> Float32Array | None:
        return _load(self._stem(key).with_suffix(".t.npy"))

    def save(self, key: ViewKey, trunk: Float32Array, features: Float32Array) -> None:
        stem = self._stem(key)
        _atomic_save(stem.with_suffix(".t.npy"), trunk)
        _atomic_save(stem.with_suffix(".f.npy"), features)  # last: its presence marks a full entry

    def load_phash(self, sha256: str) -> int | None:
        path = self.root / "phash" / sha256[:2] / f"{sha256}.txt"
        try:
            return int(path.read_text(), 16)
        except (FileNotFoundError, ValueError):
            return None

    def save_phash(self, sha256: str, value: int) -> None:
        path = self.root / "phash" / sha256[:2] / f"{sha256}.txt"
        _atomic_write(path, f"{value:016x}".encode())


def _load(path: Path) -> Float32Array | None:
    try:
        arr = np.load(path, allow_pickle=False)
    except (FileNotFoundError, ValueError, OSError):
        return None  # absent, or damaged: computed again
    return np.asarray(arr, dtype=np.float32)


def _atomic_save(path: Path, array: Float32Array) -> None:
    out = io.BytesIO()
    np.save(out, np.ascontiguousarray(array, dtype=np.float32), allow_pickle=False)
    _atomic_write(path, out.getvalue())


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, data)


def run_batches(
    net: FeatureNet,
    normalize: torch.nn.Module,
    inputs: Iterator[tuple[ViewKey, NDArray[np.uint8]]],
    *,
    cache: EmbeddingCache,
    batch_size: int,
    on_batch: Callable[[int], None],
) -> dict[ViewKey, Float32Array]:
    """Run uint8 model inputs through the frozen network in batches, caching every view.

    ``inputs`` yields (key, ``(H, W, 3)`` uint8) pairs, lazily (decoding happens as it is
    consumed); ``on_batch(n_done)`` is called after each batch (progress and the cancel check).
    Returns the pooled features of each key."""
    out: dict[ViewKey, Float32Array] = {}
    keys: list[ViewKey] = []
    batch: list[NDArray[np.uint8]] = []

    def flush() -> None:
        with torch.inference_mode():
            x = normalize(torch.from_numpy(np.stack(batch)))
            trunk = net.trunk(x)
            feats = net.top(trunk)
        trunk_np = trunk.contiguous().numpy()
        feats_np = feats.numpy()
        for i, key in enumerate(keys):
            cache.save(key, trunk_np[i], feats_np[i])
            out[key] = feats_np[i].copy()
        keys.clear()
        batch.clear()
        on_batch(len(out))

    for key, image in inputs:
        keys.append(key)
        batch.append(image)
        if len(batch) == batch_size:
            flush()
    if batch:
        flush()
    return out


def stack_features(keys: Sequence[ViewKey], features: dict[ViewKey, Float32Array]) -> Float32Array:
    """``(len(keys), D)`` features in the order of ``keys``."""
    return np.stack([features[k] for k in keys]).astype(np.float32)
