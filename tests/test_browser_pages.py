"""The server side of the web pages, without a browser: the dataset warnings, the image view's
neighbours endpoint, and which pages need a login."""

from __future__ import annotations

import html
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient

from tagtrain.server.routes.dataset_pages import dataset_warnings
from tagtrain.store.datasets import DatasetStats
from tests.conftest import trashnet_photos


def stats(tag_counts: dict[str, int], images: int, untagged: int) -> DatasetStats:
    return DatasetStats("d", "", datetime.now(UTC), images, untagged, tag_counts)


def test_a_healthy_dataset_has_no_warnings_but_the_multilabel_one() -> None:
    warnings = dataset_warnings(stats({"a": 40, "b": 30}, images=70, untagged=0))
    assert warnings == [
        "No negative examples: every image has a label. For a multi-label model, add images "
        "that show none of the labels and leave them untagged."
    ]
    assert dataset_warnings(stats({"a": 40, "b": 30}, images=75, untagged=5)) == []


def test_each_warning_names_what_to_fix() -> None:
    few = dataset_warnings(stats({"a": 50, "b": 9, "c": 3}, images=62, untagged=0))
    assert few[0] == (
        "Fewer than 10 images on these labels: “c” (3), “b” (9); "
        "give every label at least 10 (more is better)."
    )
    assert "“a” has 50 images but “c” only 3 (16.7x apart)" in few[1]
    assert dataset_warnings(stats({"a": 12, "b": 36}, images=48, untagged=1)) == []
    assert (
        "“b” has 37 images but “a” only 12 (3.1x apart)"
        in dataset_warnings(stats({"a": 12, "b": 37}, images=49, untagged=1))[0]
    )
    half = dataset_warnings(stats({"a": 20, "b": 20}, images=80, untagged=40))
    assert half == [
        "Only 50% of the images are labeled (40 of 80 have no tag); "
        "a single-label model learns nothing from them."
    ]
    assert dataset_warnings(stats({}, images=0, untagged=0))[0].startswith("The dataset is empty")
    assert dataset_warnings(stats({}, images=5, untagged=5))[0].startswith(
        "No image in the dataset"
    )


def test_neighbors_walk_the_filtered_list(api: TestClient) -> None:
    files = [("files", (p.name, p.read_bytes(), "image/jpeg")) for p in trashnet_photos(5)]
    ids = sorted(api.post("/api/v1/images", files=files).json()["image_ids"])
    api.post("/api/v1/images/tags", json={"ids": ids[1::2], "add": ["odd"]})
    newest_first = ids[::-1]
    mid = newest_first[2]
    res = api.get(f"/api/v1/images/{mid}/neighbors").json()
    assert res == {"previous": newest_first[1], "next": newest_first[3], "newer": 2, "total": 5}
    # Under a filter the neighbours skip what does not match; the image itself need not match.
    odd = api.get(f"/api/v1/images/{ids[0]}/neighbors", params={"tag": "odd"}).json()
    assert odd == {"previous": ids[1], "next": None, "newer": 2, "total": 2}
    assert api.get("/api/v1/images/999999/neighbors").status_code == 404
    missing = api.get(f"/api/v1/images/{mid}/neighbors", params={"tag": "nope"})
    assert missing.status_code == 404
    assert missing.json()["detail"] == "no tag named 'nope'; see the tag list"


@pytest.mark.parametrize(
    "path",
    ["/", "/datasets", "/datasets/x", "/images/1", "/models", "/machines", "/account", "/label"],
)
def test_pages_need_a_login(client: TestClient, api_token: str, path: str) -> None:
    res = client.get(path, follow_redirects=False)
    assert res.status_code == 303
    assert res.headers["location"] == "/login"


def test_an_empty_install_starts_at_setup(client: TestClient) -> None:
    res = client.get("/", follow_redirects=False)
    assert res.headers["location"] == "/setup"


def test_label_opens_the_newest_matching_image(api: TestClient) -> None:
    files = [("files", (p.name, p.read_bytes(), "image/jpeg")) for p in trashnet_photos(3)]
    ids = sorted(api.post("/api/v1/images", files=files).json()["image_ids"])
    # Pages use the login cookie, not API keys; log in like a browser.
    del api.headers["Authorization"]
    page = api.get("/login")
    token = page.text.split('name="csrf_token" value="')[1].split('"')[0]
    api.post(
        "/login",
        data={"username": "admin", "password": "correct horse battery", "csrf_token": token},
    )
    res = api.get("/label?untagged=true", follow_redirects=False)
    assert res.headers["location"] == f"/images/{ids[-1]}?untagged=true"
    res = api.get("/label?tag=none-yet", follow_redirects=False)
    assert res.status_code == 404
    assert "no tag named 'none-yet'" in html.unescape(res.text)
    api.post(
        "/api/v1/images/tags",
        headers={"X-CSRF-Token": _csrf(api)},
        json={"ids": ids, "add": ["done"]},
    )
    res = api.get("/label?untagged=true", follow_redirects=False)
    assert res.headers["location"] == "/?empty=label&untagged=true"


def _csrf(client: TestClient) -> str:
    return str(client.get("/").text.split('name="csrf-token" content="')[1].split('"')[0])
