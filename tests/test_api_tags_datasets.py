"""/api/v1/images/tags, /api/v1/tags and /api/v1/datasets through the real app."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient

from tests.conftest import trashnet_photos


def upload(api: TestClient, n: int) -> list[int]:
    files = [("files", (p.name, p.read_bytes(), "image/jpeg")) for p in trashnet_photos(n)]
    res = api.post("/api/v1/images", files=files)
    assert res.status_code == 200, res.text
    assert res.json()["added"] == n
    ids: list[int] = res.json()["image_ids"]
    return ids


def edit(api: TestClient, body: dict[str, Any], status: int = 200) -> dict[str, Any]:
    res = api.post("/api/v1/images/tags", json=body)
    assert res.status_code == status, res.text
    out: dict[str, Any] = res.json()
    return out


def tags_of(api: TestClient, image_id: int) -> list[str]:
    tags: list[str] = api.get(f"/api/v1/images/{image_id}").json()["tags"]
    return tags


def tag_counts(api: TestClient) -> list[tuple[str, int]]:
    return [(t["name"], t["count"]) for t in api.get("/api/v1/tags").json()]


def members(api: TestClient, dataset: str) -> list[int]:
    res = api.get("/api/v1/images", params={"dataset": dataset, "limit": 500})
    assert res.status_code == 200, res.text
    return sorted(item["id"] for item in res.json()["items"])


# ---- bulk tag edits ----------------------------------------------------------------------------


def test_bulk_tag_add_and_remove_by_ids(api: TestClient) -> None:
    i = upload(api, 4)
    assert edit(api, {"ids": i[:2], "add": ["cat", "pet"]}) == {"added": 4, "removed": 0}
    assert edit(api, {"ids": i[:3], "add": ["cat"]}) == {"added": 1, "removed": 0}
    assert [tags_of(api, x) for x in i] == [["cat", "pet"], ["cat", "pet"], ["cat"], []]
    assert edit(api, {"ids": [i[0]], "remove": ["pet"]}) == {"added": 0, "removed": 1}
    # Add and remove in one request; names are normalized (spaces collapsed).
    result = edit(api, {"ids": [i[1], i[3]], "add": ["  big   cat "], "remove": ["cat"]})
    assert result == {"added": 2, "removed": 1}
    assert [tags_of(api, x) for x in i] == [["cat"], ["big cat", "pet"], ["cat"], ["big cat"]]
    # Ids that do not exist are skipped, not errors.
    assert edit(api, {"ids": [9999], "add": ["cat"]}) == {"added": 0, "removed": 0}
    assert edit(api, {"ids": [i[0]], "add": [], "remove": []}) == {"added": 0, "removed": 0}


def test_bulk_tag_by_filter(api: TestClient) -> None:
    i = upload(api, 5)
    edit(api, {"ids": i[:2], "add": ["cat"]})
    assert edit(api, {"filter": {"untagged": True}, "add": ["todo"]})["added"] == 3
    assert edit(api, {"filter": {"tags": ["cat"]}, "add": ["pet"]})["added"] == 2
    assert edit(api, {"filter": {"tags": ["cat", "pet"], "match": "all"}, "remove": ["cat"]}) == {
        "added": 0,
        "removed": 2,
    }
    assert tag_counts(api) == [("todo", 3), ("pet", 2), ("cat", 0)]
    # An empty filter means every image.
    assert edit(api, {"filter": {}, "all": True, "add": ["all"]})["added"] == 5
    refused = api.post("/api/v1/images/tags", json={"filter": {}, "add": ["x"]})
    assert refused.status_code == 422
    assert "all" in refused.json()["detail"]
    assert edit(api, {"filter": {"tags": ["nope"]}, "add": ["x"]}, 404)["detail"] == (
        "no tag named 'nope'; see the tag list"
    )


@pytest.mark.parametrize(
    "body",
    [
        {"add": ["x"]},
        {"ids": [1], "filter": {}, "add": ["x"]},
        {"ids": None, "filter": None, "add": ["x"]},
    ],
    ids=["neither", "both", "both null"],
)
def test_selection_needs_exactly_one_of_ids_or_filter(
    api: TestClient, body: dict[str, Any]
) -> None:
    upload(api, 1)
    detail = edit(api, body, 422)["detail"]
    assert "exactly one of 'ids' or 'filter'" in detail
    assert tag_counts(api) == []


def test_bulk_edit_bodies_are_checked(api: TestClient) -> None:
    upload(api, 1)
    assert "extra" in edit(api, {"ids": [1], "add": ["x"], "colour": "red"}, 422)["detail"].lower()
    assert edit(api, {"filter": {"tag": ["x"]}, "add": ["x"]}, 422)["detail"]
    assert edit(api, {"ids": ["one"], "add": ["x"]}, 422)["detail"]
    assert edit(api, {"ids": [1], "add": "x"}, 422)["detail"]
    res = api.post(
        "/api/v1/images/tags", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert res.status_code == 422
    assert "JSON" in res.json()["detail"]


def test_model_level_validation_detail_is_a_clean_sentence(api: TestClient) -> None:
    detail = edit(api, {"add": ["x"]}, 422)["detail"]
    assert not detail.startswith(":"), detail
    assert not detail.startswith("Value error"), detail


# ---- tag names -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", "cannot be empty"),
        ("   ", "cannot be empty"),
        ("a;b", "cannot hold"),
        ("a,b", "cannot hold"),
        ("indoor/kitchen", "cannot hold"),
        ("back\\slash", "cannot hold"),
        ("bell\x07", "cannot hold"),
        ("x" * 101, "longer than 100 characters"),
    ],
    ids=["empty", "blank", "semicolon", "comma", "slash", "backslash", "control", "too long"],
)
def test_invalid_tag_names_are_400_with_a_reason(api: TestClient, name: str, message: str) -> None:
    (image,) = upload(api, 1)
    edit(api, {"ids": [image], "add": ["ok"]})
    attempts = [
        api.post("/api/v1/images/tags", json={"ids": [image], "add": [name]}),
        api.post("/api/v1/images/tags", json={"ids": [image], "add": ["fine", name]}),
        api.patch("/api/v1/tags/ok", json={"name": name}),
        api.post("/api/v1/tags/ok/merge", json={"into": name}),
    ]
    for res in attempts:
        assert res.status_code == 400, res.text
        assert message in res.json()["detail"]
    # Nothing half-done: no tag was created, renamed or merged.
    assert tag_counts(api) == [("ok", 1)]
    assert len("x" * 100) == 100
    edit(api, {"ids": [image], "add": ["x" * 100]})  # the limit itself is fine


def test_tag_names_may_hold_letters_digits_and_a_few_separators(api: TestClient) -> None:
    (image,) = upload(api, 1)
    names = ["Glass", "glass", "ñandú", "v1.2", "a:b", "c+d", "-e", "g_h", "two words",
             "Bottles (green)", "Mom's", "#1", "50%", "what?", "[x]"]  # fmt: skip
    edit(api, {"ids": [image], "add": names})
    assert tags_of(api, image) == sorted(names)


# ---- tag list, rename, merge, delete -------------------------------------------------------------


def test_tag_list_has_counts_most_used_first(api: TestClient) -> None:
    assert api.get("/api/v1/tags").json() == []
    i = upload(api, 4)
    edit(api, {"ids": i, "add": ["plastic"]})
    edit(api, {"ids": i[:2], "add": ["bottle", "clear"]})
    edit(api, {"ids": i[:1], "add": ["cap"]})
    assert tag_counts(api) == [("plastic", 4), ("bottle", 2), ("clear", 2), ("cap", 1)]


def test_rename_tag(api: TestClient) -> None:
    i = upload(api, 3)
    edit(api, {"ids": i[:2], "add": ["cat"]})
    edit(api, {"ids": i[2:], "add": ["dog"]})
    res = api.patch("/api/v1/tags/cat", json={"name": " feline "})
    assert res.status_code == 200
    assert res.json() == {"name": "feline", "count": 2}
    assert tags_of(api, i[0]) == ["feline"]
    assert api.patch("/api/v1/tags/feline", json={"name": "feline"}).json() == {
        "name": "feline",
        "count": 2,
    }
    res = api.patch("/api/v1/tags/feline", json={"name": "dog"})
    assert res.status_code == 409
    assert "merge" in res.json()["detail"]
    res = api.patch("/api/v1/tags/cat", json={"name": "x"})
    assert res.status_code == 404
    assert res.json()["detail"] == "no tag named 'cat'"
    assert api.patch("/api/v1/tags/feline", json={"new": "x"}).status_code == 422
    assert tag_counts(api) == [("feline", 2), ("dog", 1)]


def test_merge_tags(api: TestClient) -> None:
    i = upload(api, 3)
    edit(api, {"ids": [i[0], i[1]], "add": ["cat"]})
    edit(api, {"ids": [i[1], i[2]], "add": ["kitty"]})
    res = api.post("/api/v1/tags/kitty/merge", json={"into": "cat"})
    assert res.status_code == 200
    assert res.json() == {"changed": 1}  # only i[2] was newly tagged 'cat'
    assert tag_counts(api) == [("cat", 3)]
    assert [tags_of(api, x) for x in i] == [["cat"], ["cat"], ["cat"]]
    # Into a tag that does not exist yet: it is created.
    assert api.post("/api/v1/tags/cat/merge", json={"into": "animal"}).json() == {"changed": 3}
    assert tag_counts(api) == [("animal", 3)]


def test_merge_edge_cases(api: TestClient) -> None:
    i = upload(api, 2)
    edit(api, {"ids": i, "add": ["animal"]})
    # Into itself: nothing happens.
    assert api.post("/api/v1/tags/animal/merge", json={"into": "animal"}).json() == {"changed": 0}
    res = api.post("/api/v1/tags/nope/merge", json={"into": "animal"})
    assert res.status_code == 404
    assert res.json()["detail"] == "no tag named 'nope'"
    # A failed merge does not leave the target it would have created behind.
    res = api.post("/api/v1/tags/nope/merge", json={"into": "fresh"})
    assert res.status_code == 404
    assert api.post("/api/v1/tags/animal/merge", json={}).status_code == 422
    assert tag_counts(api) == [("animal", 2)]


def test_delete_tag_keeps_the_images(api: TestClient) -> None:
    i = upload(api, 2)
    edit(api, {"ids": i, "add": ["cat", "keep"]})
    assert api.delete("/api/v1/tags/cat").json() == {"changed": 1}
    assert tag_counts(api) == [("keep", 2)]
    assert [tags_of(api, x) for x in i] == [["keep"], ["keep"]]
    assert api.get("/api/v1/images/count").json() == {"count": 2}
    res = api.delete("/api/v1/tags/cat")
    assert res.status_code == 404
    assert "cat" in res.json()["detail"]


@pytest.mark.parametrize("name", ["Mom's", "#1", "50%", "what?", "a&b=c", "[x]", "ñandú"])
def test_tags_with_url_characters_can_be_renamed_and_deleted(api: TestClient, name: str) -> None:
    i = upload(api, 1)
    edit(api, {"ids": i, "add": [name]})
    res = api.patch(f"/api/v1/tags/{quote(name, safe='')}", json={"name": name + " 2"})
    assert res.status_code == 200, res.text
    assert res.json() == {"name": name + " 2", "count": 1}
    assert api.delete(f"/api/v1/tags/{quote(name + ' 2', safe='')}").status_code == 200
    assert tag_counts(api) == []


# ---- datasets ----------------------------------------------------------------------------------


def test_create_and_list_datasets(api: TestClient) -> None:
    assert api.get("/api/v1/datasets").json() == []
    res = api.post("/api/v1/datasets", json={"name": " trash ", "description": "bins"})
    assert res.status_code == 201
    created = res.json()
    assert created["name"] == "trash"
    assert created["description"] == "bins"
    assert created["images"] == 0
    assert created["created_at"]
    res = api.post("/api/v1/datasets", json={"name": "trash"})
    assert res.status_code == 409
    assert "exists already" in res.json()["detail"]
    assert api.post("/api/v1/datasets", json={"name": "Alpha"}).status_code == 201
    i = upload(api, 3)
    api.post("/api/v1/datasets/trash/images", json={"ids": i})
    listed = [(d["name"], d["images"]) for d in api.get("/api/v1/datasets").json()]
    assert listed == [("Alpha", 0), ("trash", 3)]


@pytest.mark.parametrize(
    ("name", "message"),
    [("", "cannot be empty"), ("  ", "cannot be empty"), ("a/b", "without slashes"),
     ("x" * 101, "at most 100 characters")],
)  # fmt: skip
def test_invalid_dataset_names_are_400(api: TestClient, name: str, message: str) -> None:
    res = api.post("/api/v1/datasets", json={"name": name})
    assert res.status_code == 400
    assert message in res.json()["detail"]
    assert api.post("/api/v1/datasets", json={"name": "ok"}).status_code == 201
    res = api.patch("/api/v1/datasets/ok", json={"name": name})
    assert res.status_code == 400
    assert message in res.json()["detail"]
    assert [d["name"] for d in api.get("/api/v1/datasets").json()] == ["ok"]


def test_dataset_stats(api: TestClient) -> None:
    i = upload(api, 5)
    edit(api, {"ids": i[:3], "add": ["glass"]})
    edit(api, {"ids": i[:1], "add": ["green"]})
    edit(api, {"ids": i[4:], "add": ["outside"]})  # not in the dataset
    api.post("/api/v1/datasets", json={"name": "d", "description": "some"})
    api.post("/api/v1/datasets/d/images", json={"ids": i[:4]})
    stats = api.get("/api/v1/datasets/d").json()
    assert stats["name"] == "d"
    assert stats["description"] == "some"
    assert stats["images"] == 4
    assert stats["untagged"] == 1
    assert stats["tag_counts"] == {"glass": 3, "green": 1}
    assert list(stats["tag_counts"]) == ["glass", "green"]  # most used first


def test_patch_dataset_rename_and_description(api: TestClient) -> None:
    i = upload(api, 2)
    api.post("/api/v1/datasets", json={"name": "old", "description": "first"})
    api.post("/api/v1/datasets", json={"name": "other"})
    api.post("/api/v1/datasets/old/images", json={"ids": i})
    res = api.patch("/api/v1/datasets/old", json={"description": "second"})
    assert res.status_code == 200
    assert res.json()["description"] == "second"
    res = api.patch("/api/v1/datasets/old", json={"name": "new", "description": "third"})
    assert res.status_code == 200
    assert (res.json()["name"], res.json()["description"], res.json()["images"]) == (
        "new",
        "third",
        2,
    )
    assert api.get("/api/v1/datasets/old").status_code == 404
    assert members(api, "new") == sorted(i)
    assert api.get(f"/api/v1/images/{i[0]}").json()["datasets"] == ["new"]
    # A clash changes nothing, not even the description sent with it.
    res = api.patch("/api/v1/datasets/new", json={"name": "other", "description": "lost"})
    assert res.status_code == 409
    assert api.get("/api/v1/datasets/new").json()["description"] == "third"
    assert api.patch("/api/v1/datasets/new", json={"colour": "red"}).status_code == 422
    assert api.patch("/api/v1/datasets/new", json={}).json()["name"] == "new"


def test_delete_dataset_keeps_the_images(api: TestClient) -> None:
    i = upload(api, 3)
    edit(api, {"ids": i, "add": ["t"]})
    api.post("/api/v1/datasets", json={"name": "d"})
    api.post("/api/v1/datasets/d/images", json={"ids": i})
    assert api.delete("/api/v1/datasets/d").json() == {"changed": 1}
    assert api.get("/api/v1/datasets").json() == []
    assert api.get("/api/v1/images/count").json() == {"count": 3}
    assert tag_counts(api) == [("t", 3)]
    assert api.get(f"/api/v1/images/{i[0]}").json()["datasets"] == []
    assert api.delete("/api/v1/datasets/d").status_code == 404


def test_dataset_membership_by_ids_and_by_filter(api: TestClient) -> None:
    i = upload(api, 5)
    edit(api, {"ids": i[3:], "add": ["late"]})
    api.post("/api/v1/datasets", json={"name": "d"})
    add = "/api/v1/datasets/d/images"
    remove = "/api/v1/datasets/d/images/remove"
    assert api.post(add, json={"ids": i[:2]}).json() == {"changed": 2}
    assert api.post(add, json={"ids": i[:3]}).json() == {"changed": 1}  # only the new one
    assert api.post(add, json={"filter": {"tags": ["late"]}}).json() == {"changed": 2}
    assert members(api, "d") == sorted(i)
    assert api.post(remove, json={"ids": [i[0], 9999]}).json() == {"changed": 1}
    assert api.post(remove, json={"filter": {"untagged": True}}).json() == {"changed": 2}
    assert members(api, "d") == sorted(i[3:])
    # Copy one dataset's images into another with a dataset filter.
    api.post("/api/v1/datasets", json={"name": "e"})
    res = api.post("/api/v1/datasets/e/images", json={"filter": {"dataset": "d"}})
    assert res.json() == {"changed": 2}
    assert members(api, "e") == sorted(i[3:])
    for url in (add, remove):
        assert api.post(url, json={}).status_code == 422
        assert api.post(url, json={"ids": [1], "filter": {}}).status_code == 422
    assert api.get("/api/v1/images/count").json() == {"count": 5}


def test_unknown_dataset_is_404(api: TestClient) -> None:
    upload(api, 1)
    calls = [
        ("GET", "/api/v1/datasets/nope", None),
        ("PATCH", "/api/v1/datasets/nope", {"description": "x"}),
        ("DELETE", "/api/v1/datasets/nope", None),
        ("POST", "/api/v1/datasets/nope/images", {"ids": [1]}),
        ("POST", "/api/v1/datasets/nope/images/remove", {"filter": {}, "all": True}),
        ("POST", "/api/v1/images/tags", {"filter": {"dataset": "nope"}, "add": ["x"]}),
        ("POST", "/api/v1/images/delete", {"filter": {"dataset": "nope"}}),
    ]
    for method, url, body in calls:
        res = api.request(method, url, json=body)
        assert res.status_code == 404, (method, url, res.text)
        assert "no dataset named 'nope'" in res.json()["detail"]
    assert tag_counts(api) == []
    assert api.get("/api/v1/images/count").json() == {"count": 1}
