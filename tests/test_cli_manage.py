"""The real ``tagtrain`` console script, run as a subprocess on a data folder in tmp_path: users,
keys, tags, datasets and images commands; ``--json`` output; errors and exit codes (DESIGN.md, CLI)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tagtrain.server import create_app
from tagtrain.settings import Settings
from tagtrain.store import Store, open_store
from tagtrain.store import datasets as ds_store
from tagtrain.store import tags as tag_store
from tagtrain.store.filters import ImageFilter
from tagtrain.store.images import by_ids, page
from tagtrain.store.tags import list_tags
from tests.conftest import trashnet_photos
from tests.running import clean_env

pytestmark = pytest.mark.slow  # real subprocesses

TAGTRAIN = Path(sys.executable).parent / "tagtrain"
PASSWORD = "a long enough password"


@dataclass(frozen=True)
class Run:
    returncode: int
    stdout: str
    stderr: str

    def ok(self) -> Run:
        assert self.returncode == 0, f"exit {self.returncode}\n{self.stderr}"
        return self

    def json(self) -> dict[str, Any]:
        """The one JSON object the command printed on stdout (and nothing else there)."""
        self.ok()
        lines = self.stdout.splitlines()
        assert len(lines) == 1, f"stdout is not one line:\n{self.stdout}"
        obj = json.loads(lines[0])
        assert isinstance(obj, dict), obj
        return obj


def tagtrain(data: Path, *args: str, password: str | None = None) -> Run:
    """Run ``tagtrain ARGS... --data DATA`` with the working directory beside the data folder."""
    env = clean_env({"TAGTRAIN_PASSWORD": password} if password else None)
    res = subprocess.run(
        [str(TAGTRAIN), *args, "--data", str(data)],
        capture_output=True,
        text=True,
        env=env,
        cwd=data.parent,
        timeout=120,
        check=False,
    )
    return Run(res.returncode, res.stdout, res.stderr)


@pytest.fixture
def data(tmp_path: Path) -> Path:
    assert TAGTRAIN.exists(), f"{TAGTRAIN} is missing; run make install"
    return tmp_path / "data"


@pytest.fixture
def photos_in(data: Path) -> list[int]:
    """Three photos imported with tag 'a' into dataset 'd'; returns their ids, oldest first."""
    res = tagtrain(data, "import", *map(str, trashnet_photos(3)), "--tag", "a", "--dataset", "d",
                   "--json")  # fmt: skip
    assert res.json() == {"added": 3, "existing": 0, "rejected": [], "dataset": "d"}
    return sorted(tags_by_image(data))


def tag_table(data: Path) -> dict[str, int]:
    """Tag counts, read in-process (cheaper than another subprocess)."""
    with opened(data) as store, store.transaction() as session:
        return dict(list_tags(session))


def tags_by_image(data: Path) -> dict[int, list[str]]:
    with opened(data) as store, store.transaction() as session:
        pg = page(session, ImageFilter(), cursor=None, limit=500)
    return {row.image.id: row.tags for row in pg.items}


@contextmanager
def opened(data: Path) -> Iterator[Store]:
    store = open_store(Settings(data=data))
    try:
        yield store
    finally:
        store.close()


# ---- users and keys ----------------------------------------------------------------------------


def test_users_create_and_list(data: Path) -> None:
    tagtrain(data, "users", "create", "alice", password=PASSWORD).ok()
    res = tagtrain(data, "users", "create", "bob", password=PASSWORD).ok()
    assert "bob" in res.stdout
    users = tagtrain(data, "users", "list", "--json").json()
    assert users == {
        "users": [{"username": "alice", "admin": True}, {"username": "bob", "admin": False}]
    }
    res = tagtrain(data, "users", "create", "bob", password=PASSWORD)
    assert res.returncode == 2
    assert "exists already" in res.stderr
    res = tagtrain(data, "users", "create", "carol", password="short")
    assert res.returncode == 2
    assert "at least 8 characters" in res.stderr
    # The password works on the web login form.
    with TestClient(create_app(Settings(data=data, worker=False))) as client:
        login_page = client.get("/login")
        token = client.cookies["tagtrain_csrf"]
        assert token in login_page.text
        res2 = client.post(
            "/login", data={"username": "bob", "password": PASSWORD, "csrf_token": token}
        )
        assert res2.status_code == 200
        assert client.get("/api/v1/me").json()["username"] == "bob"


def test_keys_create_then_revoke(data: Path) -> None:
    tagtrain(data, "users", "create", "alice", password=PASSWORD).ok()
    key = tagtrain(data, "keys", "create", "--user", "alice", "--name", "ci", "--json").json()
    assert set(key) == {"id", "name", "token"}
    assert key["name"] == "ci"
    with TestClient(create_app(Settings(data=data, worker=False))) as client:
        bearer = {"Authorization": f"Bearer {key['token']}"}
        me = client.get("/api/v1/me", headers=bearer)
        assert me.status_code == 200
        assert me.json()["username"] == "alice"
        listed = tagtrain(data, "keys", "list", "--user", "alice", "--json").json()
        assert listed["keys"][0]["id"] == key["id"]
        assert listed["keys"][0]["revoked"] is False
        assert key["token"] not in json.dumps(listed)
        res = tagtrain(data, "keys", "revoke", str(key["id"])).ok()
        assert str(key["id"]) in res.stdout
        res2 = client.get("/api/v1/me", headers=bearer)
        assert res2.status_code == 401
        assert "not valid" in res2.json()["detail"]


# ---- images and tags ---------------------------------------------------------------------------


def test_images_json_and_paging(data: Path, photos_in: list[int]) -> None:
    page = tagtrain(data, "images", "--json", "--limit", "2").json()
    assert [i["id"] for i in page["images"]] == sorted(photos_in, reverse=True)[:2]
    assert page["next_cursor"] == page["images"][-1]["id"]
    rest = tagtrain(data, "images", "--json", "--cursor", str(page["next_cursor"])).json()
    assert [i["id"] for i in rest["images"]] == [min(photos_in)]
    assert rest["next_cursor"] is None
    first = page["images"][0]
    assert set(first) >= {"id", "name", "tags", "sha256"}
    assert first["tags"] == ["a"]
    tagged = tagtrain(data, "images", "--where-tag", "a", "--where-dataset", "d", "--json").json()
    assert len(tagged["images"]) == 3
    human = tagtrain(data, "images").ok()
    assert trashnet_photos(1)[0].name[:8] in human.stdout


def test_tags_add_remove_rename_delete(data: Path, photos_in: list[int]) -> None:
    i = photos_in
    assert tag_table(data) == {"a": 3}
    tagtrain(data, "tags", "add", "b", "c", "--ids", f"{i[0]},{i[1]}").ok()
    tagtrain(data, "tags", "add", "late", "--where-tag", "b").ok()
    tagtrain(data, "tags", "remove", "a", "--ids", str(i[0])).ok()
    assert tag_table(data) == {"b": 2, "c": 2, "late": 2, "a": 2}
    tagtrain(data, "tags", "rename", "c", "see").ok()
    res = tagtrain(data, "tags", "rename", "see", "b")
    assert res.returncode == 2
    assert "merge" in res.stderr
    tagtrain(data, "tags", "delete", "late").ok()
    assert tags_by_image(data) == {i[0]: ["b", "see"], i[1]: ["a", "b", "see"], i[2]: ["a"]}
    tagtrain(data, "tags", "remove", "a", "b", "see", "--all").ok()
    assert tag_table(data) == {"a": 0, "b": 0, "see": 0}
    human = tagtrain(data, "tags").ok()
    assert "see" in human.stdout


def test_tags_merge(data: Path, photos_in: list[int]) -> None:
    with opened(data) as store, store.transaction() as session:
        tag_store.add_tags(session, by_ids(photos_in[:1]), ["kitty"])
    tagtrain(data, "tags", "merge", "kitty", "a", "--into", "cat").ok()
    assert tag_table(data) == {"cat": 3}


# ---- datasets ----------------------------------------------------------------------------------


def test_datasets_commands(data: Path, photos_in: list[int]) -> None:
    i = photos_in
    with opened(data) as store, store.transaction() as session:
        tag_store.add_tags(session, by_ids([i[0], i[2]]), ["odd"])
    tagtrain(data, "datasets", "create", "e", "--description", "for tests").ok()
    tagtrain(data, "datasets", "add", "e", "--where-tag", "odd").ok()
    tagtrain(data, "datasets", "add", "e", "--ids", str(i[1])).ok()
    tagtrain(data, "datasets", "remove", "e", "--ids", str(i[0])).ok()
    listed = tagtrain(data, "datasets", "--json").json()["datasets"]
    assert [(d["name"], d["images"]) for d in listed] == [("d", 3), ("e", 2)]
    assert listed[1] == {"name": "e", "images": 2, "untagged": 0, "tags": {"a": 2, "odd": 1}}
    show = tagtrain(data, "datasets", "show", "e", "--json").json()
    assert show == {"name": "e", "images": 2, "untagged": 0, "tags": {"a": 2, "odd": 1}}
    tagtrain(data, "datasets", "remove", "e", "--where-tag", "odd").ok()
    tagtrain(data, "datasets", "rename", "e", "f").ok()
    res = tagtrain(data, "datasets", "rename", "f", "d")
    assert res.returncode == 2
    assert "exists already" in res.stderr
    human = tagtrain(data, "datasets").ok()
    assert "f" in human.stdout
    with opened(data) as store, store.transaction() as session:
        assert ds_store.stats(session, "f").images == 1
    tagtrain(data, "datasets", "delete", "f").ok()
    with opened(data) as store, store.transaction() as session:
        assert [ds.name for ds, _n in ds_store.list_datasets(session)] == ["d"]
    assert len(tags_by_image(data)) == 3  # images stay


# ---- errors ------------------------------------------------------------------------------------

#: (case, arguments, words the error must hold). Every one is bad input: exit 2.
BAD_INPUT = [
    ("unknown dataset", ["datasets", "show", "nope"], ["no dataset named 'nope'"]),
    ("add to unknown dataset", ["datasets", "add", "nope", "--all"], ["no dataset named"]),
    ("filter by unknown dataset", ["images", "--where-dataset", "nope"], ["no dataset"]),
    ("unknown tag", ["tags", "rename", "nope", "x"], ["no tag named 'nope'"]),
    ("bad tag name", ["tags", "add", "a;b", "--all"], ["'a;b'", "cannot hold"]),
    ("empty tag name", ["tags", "add", " ", "--all"], ["cannot be empty"]),
    ("bad dataset name", ["datasets", "create", "a/b"], ["without slashes"]),
    ("no selection", ["tags", "add", "x"], ["say which images", "--all"]),
    ("no selection (datasets)", ["datasets", "add", "d"], ["say which images"]),
    ("bad --ids", ["tags", "add", "x", "--ids", "1,two"], ["--ids must be numbers"]),
    ("unknown key", ["keys", "revoke", "99"], ["no API key with id 99"]),
    ("unknown user", ["keys", "create", "--user", "nobody"], ["no user named 'nobody'"]),
]


@pytest.fixture(scope="module")
def bad_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Run]:
    """Each bad command, run once, on a folder holding one image and a dataset 'd'."""
    data = tmp_path_factory.mktemp("bad") / "data"
    tagtrain(data, "import", str(trashnet_photos(1)[0]), "--dataset", "d").ok()
    return {case: tagtrain(data, *args) for case, args, _words in BAD_INPUT}


@pytest.mark.parametrize(("case", "words"), [(c, w) for c, _a, w in BAD_INPUT], ids=str)
def test_bad_input_exits_2_with_a_sentence_on_stderr(
    bad_runs: dict[str, Run], case: str, words: list[str]
) -> None:
    run = bad_runs[case]
    assert run.returncode == 2, run
    assert run.stdout == ""
    assert run.stderr.startswith("error: ")
    assert "Traceback" not in run.stderr
    sentence = " ".join(run.stderr.split())
    for word in words:
        assert word in sentence, sentence


@pytest.mark.parametrize("case", [c for c, _a, _w in BAD_INPUT])
def test_an_error_is_one_line(bad_runs: dict[str, Run], case: str) -> None:
    stderr = bad_runs[case].stderr
    assert stderr.endswith("\n")
    assert stderr.count("\n") == 1, stderr


def test_a_mistyped_command_is_a_usage_error(data: Path) -> None:
    res = tagtrain(data, "tags", "frobnicate")
    assert res.returncode == 2
    assert res.stdout == ""
    assert "frobnicate" in res.stderr


def test_an_error_about_a_name_with_brackets_is_printed_verbatim(data: Path) -> None:
    res = tagtrain(data, "datasets", "create", "[/x]")  # a slash: bad input, in markup brackets
    assert res.returncode == 2
    assert "'[/x]'" in res.stderr
    assert "Traceback" not in res.stderr


def test_names_with_brackets_are_printed_verbatim(data: Path) -> None:
    res = tagtrain(data, "datasets", "create", "[bold]x").ok()
    assert "'[bold]x'" in res.stdout
    assert "[bold]x" in tagtrain(data, "datasets").ok().stdout


def test_group_level_data_option_reaches_the_subcommand(data: Path, photos_in: list[int]) -> None:
    env = clean_env()
    res = subprocess.run(
        [str(TAGTRAIN), "tags", "--data", str(data), "delete", "a"],
        capture_output=True,
        text=True,
        env=env,
        cwd=data.parent,
        timeout=120,
        check=False,
    )
    stray = data.parent / "tagtrain-data"
    assert res.returncode == 0, res.stderr
    assert not stray.exists()
    assert tag_table(data) == {}
