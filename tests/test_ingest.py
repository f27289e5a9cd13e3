"""Importing images: folders, files, zip archives, CSV labels and Viam JSONL, through
``tagtrain.ingest.import_paths`` and through the real ``tagtrain`` console script.

Everything is real: SQLite files and blob folders in tmp_path, photos from shared/datasets, bad files
made by tests/badfiles.py. Rejected inputs must be reported one by one (file, row or line, and a
reason) while the rest of the batch still goes in.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import stat
import zipfile
from collections import Counter
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
from sqlalchemy import func, select

from tagtrain.errors import BadInput
from tagtrain.ingest import ImportOptions, ImportReport, import_paths
from tagtrain.settings import Settings
from tagtrain.store import Store, open_store
from tagtrain.store import datasets as ds_store
from tagtrain.store.tables import DatasetImage, Image
from tagtrain.store.tags import tags_of
from tests import badfiles
from tests.badfiles import Accept, Reject
from tests.conftest import COCO, TRASHNET, trashnet_photos
from tests.running import cli

# ---- helpers -----------------------------------------------------------------------------------


def cli_json(*args: object, env: dict[str, str] | None = None) -> tuple[int, dict[str, Any], str]:
    res = cli(*args, "--json", env=env)
    assert res.stdout.strip(), f"no JSON on stdout; stderr:\n{res.stderr}"
    return res.returncode, json.loads(res.stdout), res.stderr


def squash(text: str) -> str:
    """``text`` without any whitespace: stderr compared this way ignores the console's line
    wrapping (see test_cli_each_rejection_is_one_stderr_line)."""
    return "".join(text.split())


def on_stderr(expected: str, stderr: str) -> bool:
    return squash(expected) in squash(stderr)


def opened(data: Path) -> Store:
    return open_store(Settings(data=data))


def copy_photos(dest: Path, photos: list[Path], *, by_class: bool = False) -> list[Path]:
    out = []
    for p in photos:
        target = dest / p.parent.name / p.name if by_class else dest / p.name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(p, target)
        out.append(target)
    return out


def rejected_map(report: ImportReport) -> dict[str, str]:
    names = [r.name for r in report.rejected]
    assert len(names) == len(set(names)), f"a rejection was reported twice: {names}"
    return {r.name: r.reason for r in report.rejected}


def stored(store: Store) -> dict[str, list[str]]:
    """Base file name of each stored image -> its sorted tags."""
    with store.transaction() as session:
        rows = session.execute(select(Image.id, Image.original_name)).all()
        tags = tags_of(session, [r.id for r in rows])
    names = [PurePosixPath(name.rsplit(":", 1)[-1]).name for _, name in rows]
    assert len(names) == len(set(names)), f"an image is stored twice: {names}"
    return {name: tags[i] for (i, _), name in zip(rows, names, strict=True)}


def image_count(store: Store) -> int:
    with store.transaction() as session:
        return session.scalar(select(func.count()).select_from(Image)) or 0


def blob_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith("."))


def check_blobs(store: Store, data: Path) -> None:
    """Every row has its original (hashing to its name) and its thumbnail; no orphan rows."""
    with store.transaction() as session:
        shas = list(session.scalars(select(Image.sha256)))
    for sha in shas:
        original = store.originals.get(sha)
        assert hashlib.sha256(original).hexdigest() == sha
        assert store.thumbnails.exists(sha)
    assert len(blob_files(data / "blobs")) == len(shas)
    assert len(blob_files(data / "thumbnails")) == len(shas)


def run_import(
    store: Store,
    settings: Settings,
    paths: list[Path],
    labels_csv: Path | None = None,
    **options: object,
) -> ImportReport:
    return import_paths(store, settings, paths, ImportOptions(**options), labels_csv=labels_csv)  # type: ignore[arg-type]


def zip_bytes(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return buf.getvalue()


@pytest.fixture
def photos() -> list[Path]:
    return trashnet_photos(12)


# ---- folders and the CLI -----------------------------------------------------------------------


def test_cli_folder_tags_from_folders_small(tmp_path: Path, photos: list[Path]) -> None:
    src = tmp_path / "in"
    copy_photos(src, photos, by_class=True)
    data = tmp_path / "data"
    rc, summary, stderr = cli_json(
        "import", src, "--data", data, "--dataset", "trash", "--tags-from-folders"
    )
    assert rc == 0, stderr
    assert summary == {"added": 12, "existing": 0, "rejected": [], "dataset": "trash"}
    rc, listing, stderr = cli_json("datasets", "--data", data)
    assert rc == 0, stderr
    classes = sorted(p.name for p in TRASHNET.iterdir() if p.is_dir())
    assert listing == {
        "datasets": [
            {"name": "trash", "images": 12, "untagged": 0, "tags": dict.fromkeys(classes, 2)}
        ]
    }
    store = opened(data)
    try:
        assert stored(store) == {p.name: [p.parent.name] for p in photos}
        check_blobs(store, data)
    finally:
        store.close()


@pytest.mark.slow
def test_cli_trashnet_whole_dataset(tmp_path: Path) -> None:
    data = tmp_path / "data"
    rc, summary, stderr = cli_json(
        "import", TRASHNET, "--data", data, "--dataset", "trash", "--tags-from-folders"
    )
    assert rc == 0, stderr
    assert summary["added"] == 300 and summary["rejected"] == []
    rc, listing, _ = cli_json("datasets", "--data", data)
    assert listing["datasets"] == [
        {
            "name": "trash",
            "images": 300,
            "untagged": 0,
            "tags": {c: 50 for c in ("cardboard", "glass", "metal", "paper", "plastic", "trash")},
        }
    ]
    rc, tags, _ = cli_json("tags", "--data", data)
    assert sorted((t["name"], t["count"]) for t in tags["tags"]) == [
        (c, 50) for c in ("cardboard", "glass", "metal", "paper", "plastic", "trash")
    ]
    store = opened(data)
    try:
        check_blobs(store, data)
        with store.transaction() as session:
            sizes = set(session.execute(select(Image.width, Image.height)).all())
        assert sizes <= {(384, 512), (512, 384)}
    finally:
        store.close()


@pytest.mark.slow
def test_cli_coco_labels_csv_matches_readme(tmp_path: Path) -> None:
    data = tmp_path / "data"
    rc, summary, stderr = cli_json(
        "import",
        COCO / "images",
        "--labels-csv",
        COCO / "labels.csv",
        "--dataset",
        "coco",
        "--data",
        data,
    )
    assert rc == 0, stderr
    assert summary["added"] == 210 and summary["rejected"] == []
    rc, shown, _ = cli_json("datasets", "show", "coco", "--data", data)
    assert rc == 0
    assert shown["images"] == 210
    assert shown["untagged"] == 42
    assert shown["tags"] == {
        "person": 88,
        "furniture": 45,
        "vehicle": 45,
        "kitchenware": 42,
        "animal": 36,
        "food": 27,
    }
    store = opened(data)
    try:
        per_image = Counter(len(t) for t in stored(store).values())
    finally:
        store.close()
    assert per_image == {0: 42, 1: 86, 2: 56, 3: 20, 4: 5, 5: 1}


def test_cli_done_when_mixed_folder(tmp_path: Path) -> None:
    """The issue's 'done when': good photos stored; each bad file named on stderr with its reason;
    exit code 2."""
    src = tmp_path / "in"
    good = copy_photos(src, trashnet_photos(4))
    all_bad = badfiles.rejected_bytes(trashnet_photos(5)[4])
    bad = {n: all_bad[n] for n in ("empty.jpg", "text.jpg", "truncated.jpg", "bomb.png")}
    for name, (data, _) in bad.items():
        (src / name).write_bytes(data)
    data_dir = tmp_path / "data"
    res = cli("import", src, "--data", data_dir)
    assert res.returncode == 2, res.stderr
    assert "Stored 4 new images" in res.stdout
    assert "4 rejected" in res.stdout
    reasons = {
        "empty.jpg": "the file is empty",
        "text.jpg": "not an image",
        "truncated.jpg": "the file is truncated",
        "bomb.png": "decompression bomb refused",
    }
    for name in bad:
        expected = f"rejected {src / name}: {reasons[name]}"
        assert on_stderr(expected, res.stderr), f"{expected!r} not on stderr:\n{res.stderr}"
    store = opened(data_dir)
    try:
        assert sorted(stored(store)) == sorted(p.name for p in good)
        check_blobs(store, data_dir)
    finally:
        store.close()


def test_every_bad_and_unusual_file_in_one_folder(
    tmp_path: Path, store: Store, settings: Settings
) -> None:
    src = tmp_path / "in"
    outcomes = badfiles.write_all(src, trashnet_photos(1)[0])
    report = run_import(store, settings, [src], tags=("x",))
    rejected = rejected_map(report)
    expected_rejects = {n: o for n, o in outcomes.items() if isinstance(o, Reject)}
    assert set(rejected) == {str(src / n) for n in expected_rejects}
    for name, reject in expected_rejects.items():
        assert reject.reason in rejected[str(src / name)]
    accepted = {n: o for n, o in outcomes.items() if isinstance(o, Accept)}
    assert report.added == len(accepted)
    with store.transaction() as session:
        rows = {Path(r.original_name).name: r for r in session.scalars(select(Image)).all()}
    assert set(rows) == set(accepted)
    for name, outcome in accepted.items():
        row = rows[name]
        assert (row.width, row.height, row.format) == (
            outcome.width,
            outcome.height,
            outcome.format,
        ), name
        # the original bytes are stored unchanged
        assert store.originals.get(row.sha256) == (src / name).read_bytes()
    check_blobs(store, settings.data)


def test_exif_rotated_thumbnail_stored_portrait(
    tmp_path: Path, store: Store, settings: Settings
) -> None:
    from PIL import Image as PILImage

    src = tmp_path / "in"
    src.mkdir()
    (src / "r.jpg").write_bytes(badfiles.exif_rotated_jpeg())
    report = run_import(store, settings, [src])
    assert report.added == 1
    with store.transaction() as session:
        sha = session.scalars(select(Image.sha256)).one()
    thumb = PILImage.open(io.BytesIO(store.thumbnails.get(sha)))
    assert thumb.width < thumb.height


# ---- re-import ----------------------------------------------------------------------------------


def test_reimport_same_bytes_adds_tags_and_datasets_only(
    tmp_path: Path, store: Store, settings: Settings
) -> None:
    src = tmp_path / "in"
    files = copy_photos(src, trashnet_photos(3))
    first = run_import(store, settings, [src], tags=("a",), dataset="d1")
    assert (first.added, first.existing, first.rejected) == (3, 0, [])
    blobs_before = blob_files(settings.data)

    # same bytes under other names, in another folder, plus one copy inside the same batch
    again = tmp_path / "again"
    again.mkdir()
    for i, f in enumerate(files):
        shutil.copyfile(f, again / f"renamed_{i}.jpg")
    shutil.copyfile(files[0], again / "twice.jpg")
    second = run_import(store, settings, [again], tags=("b",), dataset="d2")
    assert second.added == 0
    assert second.existing == 3
    assert second.rejected == []
    assert sorted(set(second.image_ids)) == sorted(set(first.image_ids))

    assert image_count(store) == 3
    assert blob_files(settings.data) == blobs_before
    with store.transaction() as session:
        ids = list(session.scalars(select(Image.id)))
        assert all(t == ["a", "b"] for t in tags_of(session, ids).values())
        for ds in ("d1", "d2"):
            assert ds_store.stats(session, ds).images == 3
        assert session.scalar(select(func.count()).select_from(DatasetImage)) == 6
    check_blobs(store, settings.data)


def test_same_bytes_twice_in_one_batch_stored_once(
    tmp_path: Path, store: Store, settings: Settings
) -> None:
    src = tmp_path / "in"
    (p,) = copy_photos(src / "cats", trashnet_photos(1))
    (src / "dogs").mkdir()
    shutil.copyfile(p, src / "dogs" / "same.jpg")
    report = run_import(store, settings, [src], tags_from_folders=True)
    assert report.rejected == []
    assert report.added == 1
    assert image_count(store) == 1
    with store.transaction() as session:
        assert list(tags_of(session, report.image_ids[:1]).values()) == [["cats", "dogs"]]


# ---- zip archives ------------------------------------------------------------------------------


def test_zip_folders_become_tags(tmp_path: Path, store: Store, settings: Settings) -> None:
    ps = trashnet_photos(4)
    archive = tmp_path / "set.zip"
    archive.write_bytes(
        zip_bytes(
            {
                f"top/cardboard/{ps[0].name}": ps[0].read_bytes(),
                f"top/glass/{ps[1].name}": ps[1].read_bytes(),
                f"top/glass/deeper/{ps[2].name}": ps[2].read_bytes(),
                ps[3].name: ps[3].read_bytes(),
                "top/README.txt": b"not an image, skipped",
                "top/.hidden.jpg": ps[0].read_bytes(),
                f"__MACOSX/top/._{ps[0].name}": b"\x00\x05\x16\x07 resource fork",
                "top/empty_dir/": b"",
            }
        )
    )
    report = run_import(store, settings, [archive], tags_from_folders=True, dataset="z")
    assert report.rejected == []
    assert report.added == 4
    assert stored(store) == {
        ps[0].name: ["cardboard"],
        ps[1].name: ["glass"],
        ps[2].name: ["deeper"],
        ps[3].name: [],
    }
    with store.transaction() as session:
        names = set(session.scalars(select(Image.original_name)))
    assert f"{archive}:top/cardboard/{ps[0].name}" in names
    check_blobs(store, settings.data)


def test_zip_path_traversal_is_refused(tmp_path: Path, store: Store, settings: Settings) -> None:
    ps = trashnet_photos(2)
    photo = ps[0].read_bytes()
    evil = [
        "../evil.jpg",
        "../../evil_up2.jpg",
        "/abs/evil_abs.jpg",
        "ok/../../evil_mid.jpg",
        "..\\evil_backslash.jpg",
        "C:/evil_drive.jpg",
    ]
    archive = tmp_path / "work" / "archive.zip"
    archive.parent.mkdir()
    archive.write_bytes(
        zip_bytes({**dict.fromkeys(evil, photo), "ok/good.jpg": ps[1].read_bytes()})
    )
    before = {p for p in tmp_path.rglob("*")}
    report = run_import(store, settings, [archive])
    rejected = rejected_map(report)
    assert set(rejected) == {f"{archive}:{e}" for e in evil}
    assert all("path traversal" in r for r in rejected.values())
    assert report.added == 1
    assert list(stored(store)) == ["good.jpg"]
    # nothing was written outside the data folder, and nothing named evil anywhere
    after = {p for p in tmp_path.rglob("*")}
    assert {p for p in after - before if settings.data not in p.parents} == set()
    assert not list(tmp_path.parent.rglob("evil*.jpg"))
    check_blobs(store, settings.data)


def test_zip_symlink_entry_is_refused(tmp_path: Path, store: Store, settings: Settings) -> None:
    archive = tmp_path / "links.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        link = zipfile.ZipInfo("pics/link.jpg")
        link.create_system = 3  # unix
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(link, "/etc/passwd")
        zf.writestr("pics/real.jpg", trashnet_photos(1)[0].read_bytes())
    report = run_import(store, settings, [archive])
    assert rejected_map(report) == {
        f"{archive}:pics/link.jpg": "symbolic links in archives are refused"
    }
    assert list(stored(store)) == ["real.jpg"]


def test_zip_over_entry_limit_is_refused_whole(tmp_path: Path, store: Store) -> None:
    small = Settings(data=tmp_path / "data", max_zip_entries=3)
    ps = trashnet_photos(4)
    archive = tmp_path / "many.zip"
    archive.write_bytes(zip_bytes({p.name: p.read_bytes() for p in ps}))
    report = run_import(store, small, [archive])
    rejected = rejected_map(report)
    assert list(rejected) == [str(archive)]
    assert "4 entries is over the 3 limit" in rejected[str(archive)]
    assert image_count(store) == 0
    assert blob_files(small.data / "blobs") == []


def test_zip_over_uncompressed_size_limit_is_refused_whole(tmp_path: Path, store: Store) -> None:
    ps = trashnet_photos(3)
    total = sum(p.stat().st_size for p in ps)
    small = Settings(data=tmp_path / "data", max_zip_bytes=total - 1)
    archive = tmp_path / "big.zip"
    archive.write_bytes(zip_bytes({p.name: p.read_bytes() for p in ps}))
    report = run_import(store, small, [archive])
    rejected = rejected_map(report)
    assert list(rejected) == [str(archive)]
    assert f"{total:,} bytes uncompressed is over the {total - 1:,} limit" in rejected[str(archive)]
    assert image_count(store) == 0
    # the limit is inclusive: exactly at the limit goes in
    exact = Settings(data=tmp_path / "data", max_zip_bytes=total)
    assert run_import(store, exact, [archive]).added == 3


def test_zip_bomb_entries_are_refused_from_the_directory(tmp_path: Path, store: Store) -> None:
    """A 20 MB run of zeros compresses to ~20 kB: the declared size decides, not the file size."""
    small = Settings(data=tmp_path / "data", max_zip_bytes=10_000_000)
    archive = tmp_path / "bomb.zip"
    archive.write_bytes(zip_bytes({"zeros.jpg": bytes(20_000_000)}))
    assert archive.stat().st_size < 100_000
    report = run_import(store, small, [archive])
    assert "uncompressed is over" in rejected_map(report)[str(archive)]


def test_corrupt_and_truncated_zip_are_refused(
    tmp_path: Path, store: Store, settings: Settings, photos: list[Path]
) -> None:
    garbage = tmp_path / "garbage.zip"
    garbage.write_bytes(b"PK\x03\x04 this is not really a zip archive" * 10)
    good_zip = zip_bytes({p.name: p.read_bytes() for p in photos[:2]})
    cut = tmp_path / "cut.zip"
    cut.write_bytes(good_zip[: len(good_zip) // 2])
    empty = tmp_path / "empty.zip"
    empty.write_bytes(b"")
    loose = copy_photos(tmp_path / "loose", photos[2:3])
    report = run_import(store, settings, [garbage, cut, empty, *loose])
    rejected = rejected_map(report)
    assert set(rejected) == {str(garbage), str(cut), str(empty)}
    assert all("not a readable zip archive" in r for r in rejected.values())
    assert list(stored(store)) == [photos[2].name]


def test_zip_with_one_corrupt_entry_rejects_only_that_entry(
    tmp_path: Path, store: Store, settings: Settings
) -> None:
    ps = trashnet_photos(2)
    archive = tmp_path / "crc.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_STORED) as zf:
        zf.writestr("a/bad.jpg", ps[0].read_bytes())
        zf.writestr("a/good.jpg", ps[1].read_bytes())
    raw = bytearray(archive.read_bytes())
    raw[30 + len("a/bad.jpg") + 20_000] ^= 0xFF  # one flipped bit inside the first entry's data
    archive.write_bytes(bytes(raw))
    report = run_import(store, settings, [archive])
    rejected = rejected_map(report)
    assert list(rejected) == [f"{archive}:a/bad.jpg"]
    assert list(stored(store)) == ["good.jpg"]


def test_zip_with_encrypted_entry_rejects_only_that_entry(
    tmp_path: Path, store: Store, settings: Settings
) -> None:
    ps = trashnet_photos(2)
    archive = tmp_path / "locked.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("locked.jpg", ps[0].read_bytes())
        zf.writestr("open.jpg", ps[1].read_bytes())
    # set the "encrypted" flag of the first entry, in its local and its central directory header
    raw = bytearray(archive.read_bytes())
    central = raw.index(b"PK\x01\x02")
    assert raw[:4] == b"PK\x03\x04"
    raw[6] |= 0x1
    raw[central + 8] |= 0x1
    archive.write_bytes(bytes(raw))
    assert zipfile.ZipFile(archive).infolist()[0].flag_bits & 0x1
    report = run_import(store, settings, [archive])
    assert list(rejected_map(report)) == [f"{archive}:locked.jpg"]
    assert list(stored(store)) == ["open.jpg"]


def test_zip_entry_without_a_name_is_skipped(
    tmp_path: Path, store: Store, settings: Settings
) -> None:
    photo = trashnet_photos(1)[0].read_bytes()
    archive = tmp_path / "dot.zip"
    archive.write_bytes(zip_bytes({".": photo, "good.jpg": photo}))
    report = run_import(store, settings, [archive])
    assert list(stored(store)) == ["good.jpg"]
    assert len(report.rejected) <= 1


# ---- CSV labels --------------------------------------------------------------------------------


def write_csv_case(tmp_path: Path) -> tuple[Path, Path, list[Path]]:
    src = tmp_path / "in"
    files = copy_photos(src, trashnet_photos(4))
    a, b, c, d = (f.name for f in files)
    rows = [
        b"filename,tags",  # 1 header
        f"{a},cat;dog".encode(),  # 2 good, two tags
        b"missing.jpg,cat",  # 3 names a file not imported
        b"caf\xe9.jpg,x",  # 4 Latin-1, not UTF-8
        f"{c},x,y".encode(),  # 5 three columns
        f"{a},other".encode(),  # 6 duplicate of row 2
        f"{d},".encode(),  # 7 empty tags: no tag
        b"",  # 8 blank: ignored
        f" {b} , bird ; fish ".encode(),  # 9 good, spaces trimmed
    ]
    csv_path = tmp_path / "labels.csv"
    csv_path.write_bytes(b"\r\n".join(rows) + b"\r\n")
    return src, csv_path, files


def check_csv_outcome(rejected: dict[str, str], csv_path: Path) -> None:
    assert set(rejected) == {f"{csv_path}:{n}" for n in (3, 4, 5, 6)}
    assert "missing.jpg is not among the imported files" in rejected[f"{csv_path}:3"]
    assert "not UTF-8" in rejected[f"{csv_path}:4"]
    assert "3 column(s)" in rejected[f"{csv_path}:5"]
    assert "listed again (first on row 2)" in rejected[f"{csv_path}:6"]


def test_labels_csv_bad_rows_reported_good_rows_applied(
    tmp_path: Path, store: Store, settings: Settings
) -> None:
    src, csv_path, files = write_csv_case(tmp_path)
    report = run_import(store, settings, [src], labels_csv=csv_path, tags=("all",))
    check_csv_outcome(rejected_map(report), csv_path)
    assert report.added == 4
    a, b, c, d = (f.name for f in files)
    assert stored(store) == {
        a: ["all", "cat", "dog"],
        b: ["all", "bird", "fish"],
        c: ["all"],
        d: ["all"],
    }


def test_cli_labels_csv_bad_rows_exit_2(tmp_path: Path) -> None:
    src, csv_path, files = write_csv_case(tmp_path)
    data = tmp_path / "data"
    rc, summary, stderr = cli_json("import", src, "--labels-csv", csv_path, "--data", data)
    assert rc == 2
    assert summary["added"] == 4
    check_csv_outcome({r["name"]: r["reason"] for r in summary["rejected"]}, csv_path)
    for row in (3, 4, 5, 6):
        assert on_stderr(f"rejected {csv_path}:{row}: ", stderr), stderr
    store = opened(data)
    try:
        assert stored(store)[files[0].name] == ["cat", "dog"]
    finally:
        store.close()


def test_labels_csv_matches_relative_path_then_base_name(
    tmp_path: Path, store: Store, settings: Settings
) -> None:
    ps = trashnet_photos(2)
    src = tmp_path / "in"
    copy_photos(src, ps, by_class=True)
    csv_path = tmp_path / "l.csv"
    csv_path.write_text(
        f"\ufefffilename,tags\n{ps[0].parent.name}/{ps[0].name},full\n{ps[1].name},base\n",
        encoding="utf-8",
    )
    report = run_import(store, settings, [src], labels_csv=csv_path)
    assert report.rejected == []
    assert stored(store) == {ps[0].name: ["full"], ps[1].name: ["base"]}


def test_labels_csv_row_with_invalid_tag_is_reported_by_row(
    tmp_path: Path, store: Store, settings: Settings
) -> None:
    src = tmp_path / "in"
    a, b = copy_photos(src, trashnet_photos(2))
    csv_path = tmp_path / "l.csv"
    csv_path.write_text(f"filename,tags\n{a.name},bad/tag\n{b.name},good\n")
    report = run_import(store, settings, [src], labels_csv=csv_path)
    rejected = rejected_map(report)
    assert list(rejected) == [f"{csv_path}:2"]
    assert "bad/tag" in rejected[f"{csv_path}:2"]
    assert stored(store) == {a.name: [], b.name: ["good"]}


def test_missing_labels_csv_is_bad_input(tmp_path: Path, store: Store, settings: Settings) -> None:
    with pytest.raises(BadInput, match="cannot be read"):
        run_import(store, settings, [tmp_path], labels_csv=tmp_path / "nope.csv")
    assert image_count(store) == 0


# ---- Viam JSONL --------------------------------------------------------------------------------


def write_jsonl_case(tmp_path: Path) -> tuple[Path, list[Path]]:
    root = tmp_path / "viam"
    ps = trashnet_photos(4)
    p1, p2 = copy_photos(root / "data", ps[:2])
    (p3,) = copy_photos(tmp_path / "elsewhere", ps[2:3])
    (root / "data" / "empty.jpg").write_bytes(b"")

    def ann(*labels: str) -> list[dict[str, str]]:
        return [{"annotation_label": t} for t in labels]

    lines = [
        json.dumps(
            {"image_path": f"data/{p1.name}", "classification_annotations": ann("cat", "dog")}
        ),  # 1
        '{"image_path": "data/x.jpg", ',  # 2 bad JSON
        json.dumps({"classification_annotations": ann("cat")}),  # 3 no image_path
        json.dumps({"image_path": "data/nope.jpg"}),  # 4 missing file
        json.dumps(
            {"image_path": f"data/{p1.name}", "classification_annotations": ann("x")}
        ),  # 5 dup
        "",  # 6 blank: ignored
        json.dumps(
            {
                "image_path": f"data/{p2.name}",
                "classification_annotations": ann("bird"),
                "bounding_box_annotations": [],
                "extra": {"anything": 1},
            }
        ),  # 7 extra keys ignored
        json.dumps({"image_path": str(p3)}),  # 8 absolute path, no annotations
        json.dumps({"image_path": "data/empty.jpg"}),  # 9 the file is not an image
        json.dumps(
            {"image_path": "data/y.jpg", "classification_annotations": [{"label": "z"}]}
        ),  # 10
        "[1, 2, 3]",  # 11 not an object
    ]
    jsonl = root / "dataset.jsonl"
    payload = "\n".join(lines).encode() + b"\n" + b'{"image_path": "caf\xe9.jpg"}\n'  # 12 Latin-1
    jsonl.write_bytes(payload)
    return jsonl, [p1, p2, p3]


def check_jsonl_outcome(rejected: dict[str, str], jsonl: Path) -> None:
    where = {n: f"{jsonl}:{n}" for n in (2, 3, 4, 5, 10, 11, 12)}
    empty_file = str((jsonl.parent / "data" / "empty.jpg").resolve())
    assert set(rejected) == set(where.values()) | {empty_file}
    assert "malformed line" in rejected[where[2]]
    assert "image_path" in rejected[where[3]]
    assert "data/nope.jpg does not exist" in rejected[where[4]]
    assert "listed again (first on line 1)" in rejected[where[5]]
    assert "annotation_label" in rejected[where[10]]
    assert "malformed line" in rejected[where[11]]
    assert "not UTF-8" in rejected[where[12]]
    assert "empty" in rejected[empty_file]


def test_viam_jsonl(tmp_path: Path, store: Store, settings: Settings) -> None:
    jsonl, (p1, p2, p3) = write_jsonl_case(tmp_path)
    report = run_import(store, settings, [jsonl])
    check_jsonl_outcome(rejected_map(report), jsonl)
    assert report.added == 3
    assert stored(store) == {p1.name: ["cat", "dog"], p2.name: ["bird"], p3.name: []}


def test_cli_viam_jsonl_exit_2(tmp_path: Path) -> None:
    jsonl, _ = write_jsonl_case(tmp_path)
    data = tmp_path / "data"
    rc, summary, stderr = cli_json("import", jsonl, "--data", data, "--dataset", "viam")
    assert rc == 2
    assert summary["added"] == 3
    check_jsonl_outcome({r["name"]: r["reason"] for r in summary["rejected"]}, jsonl)
    assert on_stderr(f"rejected {jsonl}:4: image file data/nope.jpg does not exist", stderr)
    rc, shown, _ = cli_json("datasets", "show", "viam", "--data", data)
    assert shown["images"] == 3
    assert shown["tags"] == {"bird": 1, "cat": 1, "dog": 1}


# ---- what a folder import skips, what an explicit path rejects ---------------------------------


def test_hidden_and_non_image_files_in_folders_are_skipped(
    tmp_path: Path, store: Store, settings: Settings
) -> None:
    ps = trashnet_photos(4)
    src = tmp_path / "in"
    src.mkdir()
    shutil.copyfile(ps[0], src / "visible.jpg")
    shutil.copyfile(ps[1], src / "UPPER.JPG")
    shutil.copyfile(ps[2], src / ".hidden.jpg")
    (src / ".git").mkdir()
    shutil.copyfile(ps[3], src / ".git" / "in_hidden_dir.jpg")
    (src / "notes.txt").write_text("shopping list")
    (src / "Thumbs.db").write_bytes(b"\x00" * 64)
    (src / "labels.csv").write_text("visible.jpg,x\n")
    (src / "no_suffix").write_bytes(ps[3].read_bytes())
    report = run_import(store, settings, [src])
    assert report.rejected == []
    assert sorted(stored(store)) == ["UPPER.JPG", "visible.jpg"]


def test_explicitly_named_files_are_not_skipped(
    tmp_path: Path, store: Store, settings: Settings
) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("shopping list")
    hidden = tmp_path / ".hidden.jpg"
    shutil.copyfile(trashnet_photos(1)[0], hidden)
    report = run_import(store, settings, [notes, hidden, tmp_path / "nope.jpg"])
    rejected = rejected_map(report)
    assert set(rejected) == {str(notes), str(tmp_path / "nope.jpg")}
    assert "not an image" in rejected[str(notes)]
    assert "no such file or folder" in rejected[str(tmp_path / "nope.jpg")]
    assert list(stored(store)) == [".hidden.jpg"]


def test_cli_explicit_non_image_file_exit_2(tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("shopping list")
    res = cli("import", notes, "--data", tmp_path / "data")
    assert res.returncode == 2
    assert on_stderr(f"rejected {notes}: not an image", res.stderr), res.stderr


# ---- size limit ---------------------------------------------------------------------------------


def test_files_over_the_upload_limit_are_rejected_each(tmp_path: Path, store: Store) -> None:
    ps = sorted(trashnet_photos(12), key=lambda p: p.stat().st_size)
    small, big = ps[:2], ps[-3:]
    limit = (small[-1].stat().st_size + big[0].stat().st_size) // 2
    assert small[-1].stat().st_size <= limit < big[0].stat().st_size
    settings = Settings(data=tmp_path / "data", max_upload_bytes=limit)
    src = tmp_path / "in"
    copy_photos(src, small + big[:1])
    archive = tmp_path / "z.zip"
    archive.write_bytes(zip_bytes({big[1].name: big[1].read_bytes()}))
    jsonl_dir = tmp_path / "j"
    copy_photos(jsonl_dir, big[2:])
    jsonl = jsonl_dir / "d.jsonl"
    jsonl.write_text(json.dumps({"image_path": big[2].name}) + "\n")
    report = run_import(store, settings, [src, archive, jsonl])
    rejected = rejected_map(report)
    assert set(rejected) == {
        str(src / big[0].name),
        f"{archive}:{big[1].name}",
        str((jsonl_dir / big[2].name).resolve()),
    }
    for name, reason in rejected.items():
        assert f"is over the {limit:,}-byte file limit" in reason, (name, reason)
    assert sorted(stored(store)) == sorted(p.name for p in small)


def test_cli_upload_limit_from_environment(tmp_path: Path, photos: list[Path]) -> None:
    src = tmp_path / "in"
    copy_photos(src, photos[:2])
    limit = min(p.stat().st_size for p in photos[:2]) - 1
    rc, summary, _ = cli_json(
        "import",
        src,
        "--data",
        tmp_path / "data",
        env={"TAGTRAIN_MAX_UPLOAD_BYTES": str(limit)},
    )
    assert rc == 2
    assert summary["added"] == 0
    assert len(summary["rejected"]) == 2
    assert all(f"over the {limit:,}-byte file limit" in r["reason"] for r in summary["rejected"])


# ---- regressions: bugs found while writing these tests, fixed since ---------------------


def test_cli_each_rejection_is_one_stderr_line(tmp_path: Path) -> None:
    src = tmp_path / "a_folder_with_a_long_name_as_people_have" / "and_a_subfolder"
    src.mkdir(parents=True)
    bad = src / "an_empty_photo_with_a_long_descriptive_name.jpg"
    bad.write_bytes(b"")
    res = cli("import", src, "--data", tmp_path / "data", env={"COLUMNS": "80"})
    assert res.returncode == 2
    assert f"rejected {bad}: the file is empty (0 bytes)" in res.stderr.splitlines()


def test_cli_file_names_with_brackets_are_printed_verbatim(tmp_path: Path) -> None:
    src = tmp_path / "in"
    (src / "holiday [").mkdir(parents=True)
    bad = src / "holiday [" / "x] [red]copy.jpg"
    bad.write_bytes(b"")
    res = cli("import", src, "--data", tmp_path / "data", env={"COLUMNS": "1000"})
    assert res.returncode == 2, res.stderr[-2000:]
    assert f"{bad}: the file is empty" in res.stderr


def test_opening_the_store_leaves_in_flight_temp_files_alone(settings: Settings) -> None:
    first = open_store(settings)
    try:
        sha = hashlib.sha256(b"x").hexdigest()
        folder = first.originals.path(sha).parent  # type: ignore[attr-defined]
        folder.mkdir(parents=True)
        in_flight = folder / ".tmp-being-written-by-another-process"
        in_flight.write_bytes(b"half")  # as LocalBlobStore.put has it between write and rename
        second = open_store(settings)  # e.g. 'tagtrain images' while the server takes uploads
        second.close()
        assert in_flight.exists()
    finally:
        first.close()
