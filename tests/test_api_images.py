"""/api/v1/images through the real app: upload (files and zips), sniffing, dedupe, limits, listing
with filters and keyset pages, bytes and thumbnails, delete, and readable errors for bad queries."""

from __future__ import annotations

import hashlib
import io
import time
import zipfile
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from tagtrain.ingest import ImportOptions, import_paths
from tagtrain.server import create_app
from tagtrain.settings import Settings
from tagtrain.store import Store, open_store
from tagtrain.store import users as user_store
from tests.conftest import trashnet_photos

FileField = tuple[str, tuple[str, bytes, str]]


def as_files(paths: list[Path]) -> list[FileField]:
    return [("files", (p.name, p.read_bytes(), "image/jpeg")) for p in paths]


def upload(api: TestClient, files: list[FileField], **form: Any) -> dict[str, Any]:
    res = api.post("/api/v1/images", files=files, data=form)
    assert res.status_code == 200, res.text
    body: dict[str, Any] = res.json()
    return body


def ids_of(api: TestClient, **params: Any) -> list[int]:
    res = api.get("/api/v1/images", params={"limit": 500, **params})
    assert res.status_code == 200, res.text
    page = res.json()
    assert page["next_cursor"] is None
    return [item["id"] for item in page["items"]]


def count_of(api: TestClient, **params: Any) -> int:
    res = api.get("/api/v1/images/count", params=params)
    assert res.status_code == 200, res.text
    n: int = res.json()["count"]
    return n


def blob_files(settings: Settings) -> list[Path]:
    return sorted(
        p
        for folder in (settings.blob_dir, settings.data / "thumbnails")
        if folder.exists()
        for p in folder.rglob("*")
        if p.is_file()
    )


def png_bytes(photo: Path) -> bytes:
    buf = io.BytesIO()
    with Image.open(photo) as img:
        img.convert("RGB").resize((64, 48)).save(buf, format="PNG")
    return buf.getvalue()


def tag(api: TestClient, ids: list[int], *names: str) -> None:
    res = api.post("/api/v1/images/tags", json={"ids": ids, "add": list(names)})
    assert res.status_code == 200, res.text


# ---- upload ------------------------------------------------------------------------------------


def test_upload_one_photo(api: TestClient, store: Store) -> None:
    (photo,) = trashnet_photos(1)
    data = photo.read_bytes()
    result = upload(api, as_files([photo]))
    assert result["added"] == 1
    assert result["existing"] == 0
    assert result["rejected"] == []
    (image_id,) = result["image_ids"]
    detail = api.get(f"/api/v1/images/{image_id}").json()
    with Image.open(photo) as img:
        size = img.size
    assert detail["id"] == image_id
    assert detail["sha256"] == hashlib.sha256(data).hexdigest()
    assert (detail["width"], detail["height"]) == size
    assert detail["format"] == "JPEG"
    assert detail["mime"] == "image/jpeg"
    assert detail["size_bytes"] == len(data)
    assert detail["source"] == "upload"
    assert detail["original_name"] == photo.name
    assert detail["tags"] == []
    assert detail["datasets"] == []
    assert store.originals.exists(detail["sha256"])
    assert store.thumbnails.exists(detail["sha256"])


def test_original_is_the_uploaded_bytes_and_thumbnail_a_small_jpeg(api: TestClient) -> None:
    (photo,) = trashnet_photos(1)
    data = photo.read_bytes()
    (image_id,) = upload(api, as_files([photo]))["image_ids"]
    detail = api.get(f"/api/v1/images/{image_id}").json()
    original = api.get(detail["original_url"])
    assert original.status_code == 200
    assert original.content == data
    assert original.headers["content-type"] == "image/jpeg"
    assert original.headers["etag"] == f'"{detail["sha256"]}"'
    thumb = api.get(detail["thumbnail_url"])
    assert thumb.status_code == 200
    assert thumb.headers["content-type"] == "image/jpeg"
    with Image.open(io.BytesIO(thumb.content)) as img:
        assert img.format == "JPEG"
        assert max(img.size) <= 256
        assert max(img.size) >= 128  # a thumbnail, not a speck
        # the aspect ratio is kept (within rounding)
        assert abs(img.width / img.height - detail["width"] / detail["height"]) < 0.02


def test_upload_many_with_tags_and_dataset(api: TestClient) -> None:
    photos = trashnet_photos(6)
    result = upload(api, as_files(photos), tags=["trash", "batch 1"], dataset="first")
    assert result["added"] == 6
    assert len(set(result["image_ids"])) == 6
    for image_id in result["image_ids"]:
        detail = api.get(f"/api/v1/images/{image_id}").json()
        assert detail["tags"] == ["batch 1", "trash"]
        assert detail["datasets"] == ["first"]
    names = {item["original_name"] for item in api.get("/api/v1/images").json()["items"]}
    assert names == {p.name for p in photos}
    assert api.get("/api/v1/datasets/first").json()["images"] == 6


def test_type_is_sniffed_from_the_bytes_not_the_name(api: TestClient) -> None:
    photos = trashnet_photos(2)
    png = png_bytes(photos[0])
    files: list[FileField] = [
        ("files", ("x.jpg", png, "image/jpeg")),
        ("files", ("notes.png", b"just some text, not a picture\n", "image/png")),
        ("files", ("empty.jpg", b"", "image/jpeg")),
        *as_files(photos[1:]),
    ]
    result = upload(api, files)
    assert result["added"] == 2  # the rest of the batch still goes in
    rejected = {r["name"]: r["reason"] for r in result["rejected"]}
    assert set(rejected) == {"notes.png", "empty.jpg"}
    assert "not an image" in rejected["notes.png"]
    assert "empty" in rejected["empty.jpg"]
    by_name = {i["original_name"]: i for i in api.get("/api/v1/images").json()["items"]}
    assert set(by_name) == {"x.jpg", photos[1].name}
    assert by_name["x.jpg"]["mime"] == "image/png"
    assert by_name["x.jpg"]["format"] == "PNG"
    assert (by_name["x.jpg"]["width"], by_name["x.jpg"]["height"]) == (64, 48)
    original = api.get(by_name["x.jpg"]["original_url"])
    assert original.headers["content-type"] == "image/png"
    assert original.content == png


def test_zip_upload_is_sniffed_even_when_named_bin(api: TestClient) -> None:
    photos = trashnet_photos(3)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr("glass/a.jpg", photos[0].read_bytes())
        archive.writestr("paper/b.jpg", photos[1].read_bytes())
        archive.writestr("paper/sub/c.JPG", photos[2].read_bytes())
        archive.writestr("paper/broken.jpg", b"not a jpeg at all")
        archive.writestr("README.txt", b"ignored: not an image name")
        archive.writestr("../evil.jpg", photos[0].read_bytes())
    result = upload(
        api,
        [("files", ("photos.bin", buf.getvalue(), "application/octet-stream"))],
        tags_from_folders="true",
    )
    assert result["added"] == 3
    rejected = {r["name"]: r["reason"] for r in result["rejected"]}
    assert set(rejected) == {"photos.bin:paper/broken.jpg", "photos.bin:../evil.jpg"}
    assert "traversal" in rejected["photos.bin:../evil.jpg"]
    tags = {t["name"]: t["count"] for t in api.get("/api/v1/tags").json()}
    assert tags == {"glass": 1, "paper": 1, "sub": 1}


def test_a_corrupt_zip_is_one_rejection(api: TestClient) -> None:
    (photo,) = trashnet_photos(1)
    files: list[FileField] = [
        ("files", ("broken.zip", b"PK\x03\x04" + b"\x00" * 40, "application/zip")),
        *as_files([photo]),
    ]
    result = upload(api, files)
    assert result["added"] == 1
    assert [r["name"] for r in result["rejected"]] == ["broken.zip"]
    assert "zip" in result["rejected"][0]["reason"]


def test_duplicate_uploads_store_nothing_twice(api: TestClient, settings: Settings) -> None:
    a, b = trashnet_photos(2)
    first = upload(api, as_files([a, a, b]))
    assert first["added"] == 2
    assert len(set(first["image_ids"])) == 2
    files_after_first = blob_files(settings)
    assert len(files_after_first) == 4  # two originals, two thumbnails
    again = upload(api, as_files([a]), tags=["again"])
    assert again["added"] == 0
    assert again["existing"] == 1
    assert again["image_ids"] == [min(first["image_ids"])]
    assert count_of(api) == 2
    assert blob_files(settings) == files_after_first
    # The new tag still lands on the stored image.
    assert ids_of(api, tag="again") == [min(first["image_ids"])]


def test_an_invalid_tag_on_upload_stores_nothing(api: TestClient, settings: Settings) -> None:
    res = api.post("/api/v1/images", files=as_files(trashnet_photos(2)), data={"tags": ["a;b"]})
    assert res.status_code == 400
    assert "a;b" in res.json()["detail"]
    assert count_of(api) == 0
    assert blob_files(settings) == []


def test_upload_without_files_is_refused(api: TestClient) -> None:
    res = api.post("/api/v1/images", data={"tags": ["x"]})
    assert res.status_code == 422
    assert "files" in res.json()["detail"]


@pytest.fixture
def small_limit_api(tmp_path: Path) -> Iterator[tuple[TestClient, int, list[Path]]]:
    """An app whose per-file upload limit lies between the sizes of two real photos."""
    photos = sorted(trashnet_photos(6), key=lambda p: p.stat().st_size)
    small, big = photos[0], photos[-1]
    assert small.stat().st_size < big.stat().st_size
    limit = small.stat().st_size
    settings = Settings(data=tmp_path / "small", max_upload_bytes=limit, worker=False)
    store = open_store(settings)
    with store.transaction() as session:
        user = user_store.create_user(
            session, username="admin", password="long password", is_admin=True
        )
        _key, token = user_store.create_api_key(session, user=user, name="t")
    with TestClient(create_app(settings, store)) as client:
        client.headers["Authorization"] = f"Bearer {token}"
        yield client, limit, [small, big]


def test_per_file_size_limit_rejects_only_that_file(
    small_limit_api: tuple[TestClient, int, list[Path]],
) -> None:
    api, limit, (small, big) = small_limit_api
    result = upload(api, as_files([big, small]))
    assert result["added"] == 1
    assert [r["name"] for r in result["rejected"]] == [big.name]
    reason = result["rejected"][0]["reason"]
    assert f"{limit:,}" in reason
    assert "limit" in reason
    assert [i["original_name"] for i in api.get("/api/v1/images").json()["items"]] == [small.name]


# ---- listing -----------------------------------------------------------------------------------


@pytest.fixture
def tagged(api: TestClient) -> list[int]:
    """Six uploaded photos: 0:a  1:a,b  2:b  3:c  4:-  5:-; dataset d = {0, 2, 4}."""
    ids = upload(api, as_files(trashnet_photos(6)))["image_ids"]
    tag(api, [ids[0], ids[1]], "a")
    tag(api, [ids[1], ids[2]], "b")
    tag(api, [ids[3]], "c")
    assert api.post("/api/v1/datasets", json={"name": "d"}).status_code == 201
    res = api.post("/api/v1/datasets/d/images", json={"ids": [ids[0], ids[2], ids[4]]})
    assert res.json() == {"changed": 3}
    return ids


def test_list_filters(api: TestClient, tagged: list[int]) -> None:
    i = tagged

    def expect(params: dict[str, Any], wanted: list[int]) -> None:
        got = ids_of(api, **params)
        assert got == sorted(wanted, reverse=True), params  # newest first
        assert count_of(api, **params) == len(wanted), params

    expect({}, i)
    expect({"tag": "a"}, [i[0], i[1]])
    expect({"tag": ["a", "b"]}, [i[0], i[1], i[2]])
    expect({"tag": ["a", "b"], "match": "any"}, [i[0], i[1], i[2]])
    expect({"tag": ["a", "b"], "match": "all"}, [i[1]])
    expect({"tag": ["a", "c"], "match": "all"}, [])
    expect({"untagged": "true"}, [i[4], i[5]])
    expect({"untagged": "false"}, i)
    expect({"dataset": "d"}, [i[0], i[2], i[4]])
    expect({"dataset": "d", "untagged": "true"}, [i[4]])
    expect({"dataset": "d", "tag": "a"}, [i[0]])
    expect({"source": "upload"}, i)
    expect({"source": "machine"}, [])
    listed = api.get("/api/v1/images", params={"tag": "b"}).json()["items"]
    assert [item["tags"] for item in listed] == [["b"], ["a", "b"]]


def test_source_filter_tells_uploads_from_imports(
    api: TestClient, store: Store, settings: Settings
) -> None:
    first, second = trashnet_photos(2)
    uploaded = upload(api, as_files([first]))["image_ids"]
    report = import_paths(store, settings, [second], ImportOptions())
    assert report.added == 1
    assert ids_of(api, source="upload") == uploaded
    assert ids_of(api, source="import") == report.image_ids
    assert count_of(api) == 2


def test_since_and_until(api: TestClient) -> None:
    photos = trashnet_photos(4)
    early = upload(api, as_files(photos[:2]))["image_ids"]
    time.sleep(0.05)
    late = upload(api, as_files(photos[2:]))["image_ids"]
    stamp = datetime.fromisoformat(api.get(f"/api/v1/images/{late[0]}").json()["created_at"])
    assert stamp.utcoffset() == timedelta(0)
    newest_first = sorted(early + late, reverse=True)
    assert ids_of(api, since=stamp.isoformat()) == sorted(late, reverse=True)
    assert ids_of(api, until=stamp.isoformat()) == sorted(early, reverse=True)
    assert ids_of(api, since=(stamp - timedelta(hours=1)).isoformat()) == newest_first
    assert ids_of(api, until=(stamp - timedelta(hours=1)).isoformat()) == []
    # The same instant in another zone, and a naive time (read as UTC), mean the same thing.
    plus_two = stamp.astimezone(timezone(timedelta(hours=2)))
    assert ids_of(api, since=plus_two.isoformat()) == sorted(late, reverse=True)
    naive = stamp.replace(tzinfo=None)
    assert ids_of(api, since=naive.isoformat()) == sorted(late, reverse=True)
    assert count_of(api, since=stamp.isoformat(), until=stamp.isoformat()) == 0


def test_keyset_pages(api: TestClient) -> None:
    ids = upload(api, as_files(trashnet_photos(25)))["image_ids"]
    assert len(ids) == 25
    tag(api, ids[::2], "even")  # 13 images

    def walk(**params: Any) -> list[list[int]]:
        pages: list[list[int]] = []
        cursor = None
        while True:
            query = {**params, **({"cursor": cursor} if cursor is not None else {})}
            res = api.get("/api/v1/images", params=query)
            assert res.status_code == 200, res.text
            page = res.json()
            pages.append([item["id"] for item in page["items"]])
            cursor = page["next_cursor"]
            if cursor is None:
                return pages
            assert len(pages) < 10, "the pages never end"

    pages = walk(limit=10)
    assert [len(p) for p in pages] == [10, 10, 5]
    flat = [i for p in pages for i in p]
    assert flat == sorted(ids, reverse=True)  # every image once, newest first
    pages = walk(limit=5, tag="even")
    assert [len(p) for p in pages] == [5, 5, 3]
    assert [i for p in pages for i in p] == sorted(ids[::2], reverse=True)
    # Exactly one full page: no empty page after it.
    assert [len(p) for p in walk(limit=25)] == [25]


# ---- one image, delete -----------------------------------------------------------------------------


def test_image_detail_has_tags_and_datasets(api: TestClient, tagged: list[int]) -> None:
    assert api.post("/api/v1/datasets", json={"name": "e"}).status_code == 201
    api.post("/api/v1/datasets/e/images", json={"ids": [tagged[0]]})
    detail = api.get(f"/api/v1/images/{tagged[0]}").json()
    assert detail["tags"] == ["a"]
    assert detail["datasets"] == ["d", "e"]
    detail = api.get(f"/api/v1/images/{tagged[5]}").json()
    assert detail["tags"] == []
    assert detail["datasets"] == []


def test_unknown_image_is_404(api: TestClient) -> None:
    for suffix in ("", "/original", "/thumbnail"):
        res = api.get(f"/api/v1/images/999{suffix}")
        assert res.status_code == 404
        assert res.json()["detail"] == "no image with id 999"
    assert api.delete("/api/v1/images/999").status_code == 404
    res = api.get("/api/v1/images/abc")
    assert res.status_code == 422
    assert "image_id" in res.json()["detail"]


def test_delete_one_image_removes_row_and_blobs(api: TestClient, store: Store) -> None:
    keep, gone = upload(api, as_files(trashnet_photos(2)))["image_ids"]
    sha_gone = api.get(f"/api/v1/images/{gone}").json()["sha256"]
    sha_keep = api.get(f"/api/v1/images/{keep}").json()["sha256"]
    tag(api, [keep, gone], "x")
    res = api.delete(f"/api/v1/images/{gone}")
    assert res.status_code == 200
    assert res.json() == {"count": 1}
    assert api.get(f"/api/v1/images/{gone}").status_code == 404
    assert not store.originals.exists(sha_gone)
    assert not store.thumbnails.exists(sha_gone)
    assert store.originals.exists(sha_keep)
    assert store.thumbnails.exists(sha_keep)
    assert ids_of(api) == [keep]
    assert api.get("/api/v1/tags").json() == [{"name": "x", "count": 1}]
    assert api.delete(f"/api/v1/images/{gone}").status_code == 404


def test_bulk_delete_by_ids_and_by_filter(api: TestClient, store: Store) -> None:
    ids = upload(api, as_files(trashnet_photos(5)))["image_ids"]
    shas = {i: api.get(f"/api/v1/images/{i}").json()["sha256"] for i in ids}
    tag(api, ids[1:3], "junk")
    res = api.post("/api/v1/images/delete", json={"ids": [ids[0], 12345]})
    assert res.json() == {"count": 1}
    res = api.post("/api/v1/images/delete", json={"filter": {"tags": ["junk"]}})
    assert res.json() == {"count": 2}
    assert ids_of(api) == sorted(ids[3:], reverse=True)
    for i in ids[:3]:
        assert not store.originals.exists(shas[i])
        assert not store.thumbnails.exists(shas[i])
    for i in ids[3:]:
        assert store.originals.exists(shas[i])
        assert store.thumbnails.exists(shas[i])
    assert api.post("/api/v1/images/delete", json={"ids": []}).json() == {"count": 0}
    for body in ({}, {"ids": [ids[3]], "filter": {}}, {"ids": [ids[3]], "bogus": 1}):
        res = api.post("/api/v1/images/delete", json=body)
        assert res.status_code == 422, body
        assert res.json()["detail"]
    assert count_of(api) == 2


# ---- bad query strings ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "status", "words"),
    [
        ({"limit": 0}, 422, ["limit", "greater than or equal to 1"]),
        ({"limit": 9999}, 422, ["limit", "less than or equal to 500"]),
        ({"limit": "ten"}, 422, ["limit"]),
        ({"match": "bogus"}, 422, ["match", "'any' or 'all'"]),
        ({"since": "notadate"}, 422, ["since", "datetime"]),
        ({"until": "2024-13-45"}, 422, ["until"]),
        ({"source": "camera"}, 422, ["source"]),
        ({"untagged": "maybe"}, 422, ["untagged"]),
        ({"cursor": "abc"}, 422, ["cursor"]),
        ({"tag": "nope"}, 404, ["no tag named 'nope'"]),
        ({"tag": ["a", "nope"]}, 404, ["'nope'"]),
        ({"dataset": "nope"}, 404, ["no dataset named 'nope'"]),
        ({"machine": "nope"}, 404, ["no machine named 'nope'"]),
    ],
)
def test_bad_query_strings_get_a_readable_4xx(
    api: TestClient, params: dict[str, Any], status: int, words: list[str]
) -> None:
    tag(api, upload(api, as_files(trashnet_photos(1)))["image_ids"], "a")
    endpoints = ["/api/v1/images", "/api/v1/images/count"]
    if "limit" in params or "cursor" in params:
        endpoints = endpoints[:1]  # /count has no paging
    for url in endpoints:
        res = api.get(url, params=params)
        assert res.status_code == status, (url, res.text)
        detail = res.json()["detail"]
        assert isinstance(detail, str)
        for word in words:
            assert word in detail, (url, detail)


def test_upload_where_every_file_is_rejected_is_422_with_reasons(api: TestClient) -> None:
    files = [
        ("files", ("a.jpg", b"not an image", "image/jpeg")),
        ("files", ("b.png", b"", "image/png")),
    ]
    res = api.post("/api/v1/images", files=files)
    assert res.status_code == 422
    body = res.json()
    assert body["added"] == 0
    assert {r["name"] for r in body["rejected"]} == {"a.jpg", "b.png"}


def test_missing_thumbnail_is_made_again_from_the_original(api: TestClient, store: Store) -> None:
    photo = trashnet_photos(1)[0]
    res = api.post(
        "/api/v1/images", files=[("files", (photo.name, photo.read_bytes(), "image/jpeg"))]
    )
    image_id = res.json()["image_ids"][0]
    sha = api.get(f"/api/v1/images/{image_id}").json()["sha256"]
    store.thumbnails.delete(sha)
    again = api.get(f"/api/v1/images/{image_id}/thumbnail")
    assert again.status_code == 200
    assert again.content[:2] == b"\xff\xd8"
    assert store.thumbnails.exists(sha)
