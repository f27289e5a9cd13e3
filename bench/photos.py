"""Distinct real-photo JPEGs made from the trashnet photos: random crop, flip and turn, resized so
the long side has a set length, saved at a set quality. Seeded, so every run makes the same files.
"""

from __future__ import annotations

import hashlib
import os
import random
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from bench.common import trashnet_by_class


@dataclass(frozen=True)
class PhotoSet:
    """Files under ``root/<class>/``; ``per_class`` counts them."""

    root: Path
    files: list[Path]
    per_class: dict[str, int]


@dataclass(frozen=True)
class _Job:
    source: Path
    dest: Path
    seed: str


def build_variants(
    dest: Path, *, per_photo: int, long_side: int = 640, quality: int = 90, seed: int = 0
) -> PhotoSet:
    """Write ``per_photo`` variants of each trashnet photo under ``dest/<class>/``."""
    jobs = [
        _Job(src, dest / cls / f"{src.stem}-v{k}.jpg", f"{seed}:{cls}/{src.name}:{k}")
        for cls, sources in trashnet_by_class().items()
        for src in sources
        for k in range(per_photo)
    ]
    for folder in {j.dest.parent for j in jobs}:
        folder.mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        list(pool.map(lambda j: _write(j, long_side, quality), jobs))
    files = [j.dest for j in jobs]
    _check_distinct(files)
    per_class: dict[str, int] = {}
    for f in files:
        per_class[f.parent.name] = per_class.get(f.parent.name, 0) + 1
    return PhotoSet(dest, files, per_class)


def _write(job: _Job, long_side: int, quality: int) -> None:
    with Image.open(job.source) as src:
        img = variant(src.convert("RGB"), random.Random(job.seed), long_side)
    img.save(job.dest, format="JPEG", quality=quality)


def variant(img: Image.Image, rng: random.Random, long_side: int) -> Image.Image:
    """A random crop (55-100% of each side, drawn apart, so the aspect varies too), maybe
    mirrored, maybe turned to landscape, resized (bicubic) so its longer side is ``long_side``."""
    w, h = img.size
    cw, ch = round(w * rng.uniform(0.55, 1.0)), round(h * rng.uniform(0.55, 1.0))
    x, y = rng.randint(0, w - cw), rng.randint(0, h - ch)
    out = img.crop((x, y, x + cw, y + ch))
    if rng.random() < 0.5:
        out = out.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    if rng.random() < 0.25:
        out = out.transpose(Image.Transpose.ROTATE_90)
    factor = long_side / max(out.size)
    size = (
        long_side if out.width >= out.height else round(out.width * factor),
        long_side if out.height > out.width else round(out.height * factor),
    )
    return out.resize(size, Image.Resampling.BICUBIC)


def _check_distinct(files: list[Path]) -> None:
    digests = {hashlib.sha256(f.read_bytes()).digest() for f in files}
    if len(digests) != len(files):
        raise RuntimeError(f"only {len(digests)} of {len(files)} generated photos are distinct")
