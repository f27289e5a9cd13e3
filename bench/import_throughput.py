"""Import throughput: ``tagtrain import FOLDER --tags-from-folders`` on 1,200 distinct 640-px
JPEGs, timed as a whole CLI process (start-up included), against a bare in-process loop that does
only what any import must do per file: read the bytes, sha256 them, fully decode them. Each import
goes into a fresh store whose rows, tags and thumbnails are checked afterwards; the faster of two
runs counts (the machine may be shared), for the peer alike."""

from __future__ import annotations

import hashlib
import io
import shutil
import sqlite3
import subprocess
import time
from contextlib import closing
from pathlib import Path

from PIL import Image

from bench.common import scripts_dir, temp_dir
from bench.photos import PhotoSet, build_variants
from bench.rows import Bar, Row

PER_PHOTO = 4  # 300 trashnet photos x 4 = 1,200 files
RUNS = 2  # the best of RUNS is reported, for the import and for the peer alike
BAR = Bar(">=", 150)
UNIT = "images/s"


def run() -> list[Row]:
    with temp_dir("import") as tmp:
        photos = build_variants(tmp / "photos", per_photo=PER_PHOTO)
        (tmp / "empty").mkdir()
        fixed_s = cli_import(tmp / "empty", tmp / "data-empty")
        import_runs = [checked_import(photos, tmp / f"data-{i}") for i in range(RUNS)]
        peer_runs = [bare_loop(photos.files) for _ in range(RUNS)]
    n = len(photos.files)
    best, peer = min(import_runs), min(peer_runs)
    return [
        Row(
            f"import {n:,} JPEGs of 640 px (whole CLI)",
            n / best,
            UNIT,
            bar=BAR,
            peer=n / peer,
            peer_is="bare loop, 1 thread: read + sha256 + Pillow decode",
            details={
                "images": n,
                "seconds_per_run": import_runs,
                "peer_seconds_per_run": peer_runs,
                "fixed_seconds": fixed_s,
                "rate_without_fixed": n / max(best - fixed_s, 1e-9),
            },
        ),
        Row("import: fixed cost (empty folder)", fixed_s, "s", details={"seconds": fixed_s}),
    ]


def checked_import(photos: PhotoSet, data: Path) -> float:
    """Seconds for importing ``photos`` into a fresh store at ``data``, checked, then removed."""
    elapsed = cli_import(photos.root, data)
    verify(data, photos)
    shutil.rmtree(data)
    return elapsed


def cli_import(folder: Path, data: Path) -> float:
    """Seconds for one ``tagtrain import`` process, start to exit; it must succeed."""
    tagtrain = str(scripts_dir() / "tagtrain")
    cmd = [tagtrain, "import", str(folder), "--data", str(data), "--tags-from-folders"]
    start = time.perf_counter()
    done = subprocess.run(cmd, check=False, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"tagtrain import exited {done.returncode}: {done.stderr.strip()}")
    return elapsed


def verify(data: Path, photos: PhotoSet) -> None:
    """The store holds one row per file, each tagged with its folder's name, and a thumbnail each."""
    with closing(sqlite3.connect(data / "tagtrain.db")) as db:
        images = db.execute("SELECT count(*) FROM images").fetchone()[0]
        per_tag = dict(
            db.execute(
                "SELECT tags.name, count(*) FROM image_tags JOIN tags ON tags.id = tag_id "
                "GROUP BY tags.name"
            ).fetchall()
        )
    thumbnails = sum(1 for _ in (data / "thumbnails").rglob("*.jpg"))
    expected = len(photos.files)
    if images != expected or per_tag != photos.per_class or thumbnails != expected:
        raise RuntimeError(
            f"after import: {images} rows, {thumbnails} thumbnails, tags {per_tag}; "
            f"expected {expected} each and tags {photos.per_class}"
        )


def bare_loop(files: list[Path]) -> float:
    """Seconds for the minimum per-file work, in this process, one thread."""
    start = time.perf_counter()
    for path in files:
        data = path.read_bytes()
        hashlib.sha256(data).hexdigest()
        with Image.open(io.BytesIO(data)) as img:
            img.load()
    return time.perf_counter() - start
