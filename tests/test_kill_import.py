"""SIGKILL a running ``tagtrain import`` at random moments: the store must stay consistent.

After each kill, the files and the database are inspected as the kill left them (before any
tagtrain code opens the store and tidies up): every image row has its original blob, whose sha256
is the row's and the file's name, and its thumbnail; every blob with a final name is whole. Then
the import runs again to completion and every photo must be there exactly once, tagged.

The seed is random per run and printed; set KILL_TEST_SEED to replay one.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import shutil
import signal
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from tests.conftest import trashnet_photos
from tests.running import clean_env, cli, tagtrain_exe

pytestmark = pytest.mark.slow

N_PHOTOS = 120
TRIALS = 5
TAG = "t"
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def check_files(data: Path) -> tuple[set[str], set[str], int]:
    """Every final-named file is whole; returns (original keys, thumbnail keys, temp files)."""
    originals: set[str] = set()
    thumbs: set[str] = set()
    temps = 0
    for root, keys, suffix in (
        (data / "blobs", originals, ""),
        (data / "thumbnails", thumbs, ".jpg"),
    ):
        if not root.exists():
            continue
        for path in root.rglob("*"):
            if path.is_dir():
                continue
            if path.name.startswith(".tmp-"):
                temps += 1
                continue
            assert path.name.endswith(suffix), path
            key = path.name.removesuffix(suffix)
            assert _HEX64.match(key), f"unexpected file {path}"
            assert path.parent == root / key[:2] / key[2:4], f"misplaced blob {path}"
            if suffix:  # a thumbnail is named after its original: it must decode in full
                with Image.open(path) as img:
                    assert img.format == "JPEG", path
                    img.load()
            else:
                assert _sha(path) == key, f"half-written or wrong blob {path}"
            keys.add(key)
    return originals, thumbs, temps


def db_rows(data: Path) -> list[tuple[int, str, int]]:
    """(id, sha256, number of tag t) for each images row, read with plain sqlite3."""
    db = data / "tagtrain.db"
    if not db.exists():
        return []
    con = sqlite3.connect(db)
    try:
        assert con.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if "images" not in tables:
            return []
        return con.execute(
            """
            SELECT i.id, i.sha256,
                   (SELECT count(*) FROM image_tags it JOIN tags g ON g.id = it.tag_id
                     WHERE it.image_id = i.id AND g.name = ?)
            FROM images i ORDER BY i.id
            """,
            (TAG,),
        ).fetchall()
    finally:
        con.close()


def check_consistent(data: Path, wanted: set[str]) -> int:
    """The store as left by a kill: returns how many rows it holds."""
    originals, thumbs, _temps = check_files(data)
    rows = db_rows(data)
    shas = [sha for _, sha, _ in rows]
    assert len(shas) == len(set(shas)), "an image is stored twice"
    assert set(shas) <= wanted
    for image_id, sha, tagged in rows:
        assert sha in originals, f"row {image_id} has no original blob"
        assert sha in thumbs, f"row {image_id} has no thumbnail"
        assert tagged == 1, f"row {image_id} was committed without its tag"
    assert originals <= wanted and thumbs <= wanted
    return len(rows)


def import_cmd(src: Path, data: Path) -> list[str]:
    return [tagtrain_exe(), "import", str(src), "--data", str(data), "--tag", TAG, "--json"]


def test_sigkill_during_import_keeps_the_store_consistent(tmp_path: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    for p in trashnet_photos(N_PHOTOS):
        shutil.copyfile(p, src / f"{p.parent.name}_{p.name}")
    wanted = {_sha(p) for p in src.iterdir()}
    assert len(wanted) == N_PHOTOS, "the photos are not distinct"

    # one full run first, to know how long an import takes
    started = time.monotonic()
    full = subprocess.run(
        import_cmd(src, tmp_path / "measure"), capture_output=True, text=True, env=clean_env(),
        timeout=300, check=False,
    )  # fmt: skip
    full_s = time.monotonic() - started
    assert full.returncode == 0, full.stderr
    assert json.loads(full.stdout)["added"] == N_PHOTOS
    assert check_consistent(tmp_path / "measure", wanted) == N_PHOTOS

    seed = int(os.environ.get("KILL_TEST_SEED") or random.SystemRandom().randrange(2**32))
    print(f"kill test seed: {seed} (a full import takes {full_s:.2f} s)")
    rng = random.Random(seed)
    delays = sorted(rng.uniform(0.3, max(full_s, 0.4)) for _ in range(TRIALS))

    for trial, delay in enumerate(delays):
        data = tmp_path / f"trial{trial}"
        where = f"seed {seed}, trial {trial}, kill after {delay:.3f} s"
        proc = subprocess.Popen(
            import_cmd(src, data), stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=clean_env()
        )
        time.sleep(delay)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
        killed = proc.returncode == -signal.SIGKILL
        assert killed or proc.returncode == 0, f"{where}: exit {proc.returncode}"

        rows = check_consistent(data, wanted)
        print(f"{where}: {'killed' if killed else 'finished'} with {rows} rows")
        if not killed:
            assert rows == N_PHOTOS, where

        # run it again to completion
        rc, summary, stderr = _run_json(src, data)
        assert rc == 0, f"{where}: {stderr}"
        assert summary["rejected"] == [], where
        assert summary["added"] == N_PHOTOS - rows, where
        assert summary["existing"] == rows, where
        assert check_consistent(data, wanted) == N_PHOTOS, where
        originals, thumbs, temps = check_files(data)
        assert originals == wanted and thumbs == wanted, f"{where}: blobs differ from rows"
        assert temps == 0, f"{where}: temp files left behind"
        final = db_rows(data)
        assert sorted(sha for _, sha, _ in final) == sorted(wanted), where
        assert all(tagged == 1 for _, _, tagged in final), where


def _run_json(src: Path, data: Path) -> tuple[int, dict[str, Any], str]:
    res = cli("import", src, "--data", data, "--tag", TAG, "--json")
    assert res.stdout.strip(), f"no JSON on stdout (exit {res.returncode}); stderr: {res.stderr}"
    return res.returncode, json.loads(res.stdout), res.stderr
