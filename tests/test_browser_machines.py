"""The Machines pages in a real browser: register a machine (its key shown once, with the command
that starts the agent), see it come online, edit its config (a bad value is refused with the
server's reason), deploy from a model version's page, pin an earlier version, classify a photo
with the deployed version, see the live view direct from the machine or (when the browser cannot
reach it) relayed by the server, rotate the key, and fit a phone's width.

The agent's side is played by plain HTTP calls with the machine key, as the agent makes them."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from tagtrain.store import Store, open_store
from tagtrain.store import machines as machine_store
from tests.browser.harness import LiveServer, shot
from tests.browser.steps import api_get, assert_fits_width, first_run, go_tab, log_in, ready
from tests.conftest import trashnet_photos
from tests.deploy_helpers import seed_model

pytestmark = pytest.mark.browser
pytest_plugins = ["tests.browser.fixtures"]
POLL = 12_000  # the pages poll every 5 s
SHOWS_A_FRAME = "document.querySelector('#streams img').naturalWidth > 0"


@pytest.fixture
def store(live: LiveServer) -> Iterator[Store]:
    s = open_store(live.settings)
    yield s
    s.close()


def register(store: Store, name: str = "pi-kitchen") -> tuple[int, str]:
    with store.transaction() as session:
        machine, key = machine_store.create(session, name=name)
        return machine.id, key


def report_status(live: LiveServer, key: str, **status: Any) -> None:
    body = {
        "model": "trash-tiny@2",
        "cameras": [{"name": "door", "ok": True, "fps": 24.5}],
        "recent": [
            {
                "camera": "door",
                "at": "2026-05-01T12:00:00+00:00",
                "classifications": [{"class_name": "glass", "confidence": 0.91}],
            }
        ],
        "agent_version": "test",
    } | status
    res = httpx.post(
        f"{live.url}/api/v1/agent/status",
        json=body,
        headers={"Authorization": f"Bearer {key}"},
    )
    assert res.status_code == 204, res.text


def agent_config(live: LiveServer, key: str) -> httpx.Response:
    return httpx.get(f"{live.url}/api/v1/agent/config", headers={"Authorization": f"Bearer {key}"})


def test_register_a_machine_see_its_key_once_and_watch_it_come_online(
    page: Page, live: LiveServer
) -> None:
    first_run(page)
    go_tab(page, "Machines")
    ready(page)
    expect(page.locator("#no-machines")).to_be_visible()
    page.get_by_label("Machine name").fill("has space")
    page.get_by_role("button", name="Register").click()
    expect(page.locator(".toast.error")).to_contain_text("Machine name 'has space' must be")
    page.js_errors.clear()  # type: ignore[attr-defined]  # showError logs the refusal too
    page.get_by_label("Machine name").fill("pi-kitchen")
    page.get_by_role("button", name="Register").click()
    key = page.locator("#machine-key").inner_text()
    assert re.fullmatch(r"tm_[\w-]{40,}", key), key
    command = f"tagtrain agent --server {live.url} --machine-key {key}"
    expect(page.locator("#agent-command")).to_have_text(command)
    expect(page.get_by_text("Copy it now: it is not shown again.")).to_be_visible()
    expect(page.get_by_role("button", name="Copy command")).to_be_visible()
    card = page.locator('.machine[data-machine="pi-kitchen"]')
    expect(card).to_contain_text("offline")
    expect(card).to_contain_text("nothing deployed")
    shot(page, "machines-registered")
    assert agent_config(live, key).status_code == 200  # the key shown is the machine's key

    page.reload()
    ready(page)
    expect(page.locator("#new-key")).to_be_hidden()
    assert key not in page.content()

    report_status(live, key)
    expect(card).to_contain_text("online", timeout=POLL)
    expect(card.locator(".fps")).to_have_text("door 24.5 fps")
    expect(card.locator(".recent")).to_contain_text("glass 91%")
    card.get_by_role("link", name="pi-kitchen").click()
    expect(page).to_have_url(re.compile(r"/machines/\d+$"))
    ready(page)
    expect(page.locator("#machine-summary")).to_contain_text("Online")
    expect(page.locator("#machine-summary")).to_contain_text("serving trash-tiny@2")
    expect(page.locator("#recent li")).to_have_count(1)
    assert page.js_errors == []  # type: ignore[attr-defined]


def post_frame(live: LiveServer, key: str, photo: Path) -> None:
    """What the agent sends while someone watches it through the server."""
    files = {"file": ("door.jpg", photo.read_bytes(), "image/jpeg")}
    res = httpx.post(
        f"{live.url}/api/v1/agent/frames",
        data={"camera": "door"},
        files=files,
        headers={"Authorization": f"Bearer {key}"},
    )
    assert res.status_code == 204, res.text


@contextmanager
def agent_stream(photo: Path) -> Iterator[str]:
    """A stand-in for an agent's own stream on loopback: ``/stream/door.mjpg`` sends one MJPEG
    part (the photo) and ends. Yields its base URL."""
    jpeg = photo.read_bytes()

    class Stream(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path != "/stream/door.mjpg":
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=f")
            self.end_headers()
            head = f"--f\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n"
            self.wfile.write(head.encode() + jpeg + b"\r\n--f--\r\n")

        def log_message(self, *_args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Stream)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def camera_field(page: Page, label: str) -> Any:
    return page.locator("fieldset.cam-config").first.get_by_label(label, exact=True)


def test_config_deploy_pin_test_panel_stream_and_key(
    page: Page,
    phone: Page,
    live: LiveServer,
    store: Store,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    first_run(page)
    seed_model(store, live.settings, tmp_path_factory)
    machine_id, key = register(store)
    page.goto(f"/machines/{machine_id}")
    ready(page)
    expect(page.locator("#no-stream")).to_have_text(
        "The live stream appears here when the agent is online."
    )
    expect(page.locator("#test-none")).to_be_visible()

    # The config form: a camera with an impossible confidence band is refused with the reason.
    page.get_by_role("button", name="Add camera").click()
    camera_field(page, "Name").fill("door")
    camera_field(page, "Source").fill("rtsp://10.0.0.5/stream")
    camera_field(page, "Max fps").fill("15")
    camera_field(page, "Capture frequency (Hz)").fill("0.5")
    camera_field(page, "Tags for captures").fill("from-door, unsure")
    camera_field(page, "Min confidence").fill("0.9")
    camera_field(page, "Max confidence").fill("0.2")
    page.get_by_role("button", name="Save config").click()
    error = page.locator(".toast.error")
    expect(error).to_contain_text("The config was not saved")
    expect(error).to_contain_text("the band would never match")
    assert api_get(page, f"/api/v1/machines/{machine_id}")["config"]["cameras"] == []
    error.get_by_role("button", name="Dismiss").click()
    page.js_errors.clear()  # type: ignore[attr-defined]  # showError logs the refusal too
    camera_field(page, "Max confidence").fill("1")
    page.get_by_label("Default minimum confidence").fill("0.25")
    page.get_by_label("Per-label minimums").fill("glass=0.8, metal")  # the second has no value
    page.get_by_role("button", name="Save config").click()
    expect(error).to_contain_text('per-label minimum "metal" is not label=number')
    error.get_by_role("button", name="Dismiss").click()
    page.js_errors.clear()  # type: ignore[attr-defined]
    page.get_by_label("Per-label minimums").fill("glass=0.8, metal: 0.6")
    page.get_by_role("button", name="Save config").click()
    expect(page.locator(".toast.ok")).to_contain_text("Config saved")
    config = agent_config(live, key).json()["config"]
    assert config["cameras"][0]["name"] == "door"
    assert config["cameras"][0]["max_fps"] == 15
    assert config["cameras"][0]["capture"]["tags"] == ["from-door", "unsure"]
    assert config["cameras"][0]["capture"]["min_confidence"] == 0.9
    assert config["vision"]["default_minimum_confidence"] == 0.25
    assert config["vision"]["label_confidences"] == {"glass": 0.8, "metal": 0.6}
    page.reload()
    ready(page)
    expect(camera_field(page, "Tags for captures")).to_have_value("from-door, unsure")
    expect(page.get_by_label("Per-label minimums")).to_have_value("glass=0.8, metal=0.6")

    # Deploy the newest version, then pin the earlier one (a rollback) in one click.
    page.locator("#deploy-model").select_option("trash-tiny")
    page.locator("#deploy-version").select_option("")
    page.get_by_role("button", name="Deploy", exact=True).click()
    expect(page.locator("#deployment")).to_have_text("trash-tiny v2 (follows the newest version)")
    expect(page.locator('#version-list tr[data-version="2"]')).to_contain_text("deployed")
    page.locator('#version-list tr[data-version="1"]').get_by_role("button", name="Pin").click()
    expect(page.locator("#deployment")).to_have_text("trash-tiny v1 (pinned)")
    expect(page.locator('#version-list tr[data-version="1"]')).to_contain_text("pinned")
    assert agent_config(live, key).json()["deployment"]["version"] == 1

    # The test panel classifies a photo with the deployed version.
    expect(page.locator("#test-none")).to_be_hidden()
    expect(page.locator("#tryit")).to_have_attribute("data-ref", "trash-tiny@1")
    photo = trashnet_photos(1)[0]
    page.set_input_files("#tryit-file", photo)
    expect(page.locator("#tryit")).to_have_attribute("data-state", "done")
    expect(page.locator("#tryit-results li")).to_have_count(5)
    expect(page.locator("#tryit-status")).to_contain_text("is the best match")

    # Online with a stream the browser can load: one live image per camera, from the agent.
    stream, via = page.locator("#streams img"), page.locator("#streams .stream-via")
    with agent_stream(photo) as agent_url:
        report_status(live, key, stream_url=agent_url)
        expect(stream).to_have_attribute("src", f"{agent_url}/stream/door.mjpg", timeout=POLL)
        expect(via).to_have_text("direct from the machine")
        page.wait_for_function(SHOWS_A_FRAME)

    # A stream URL the browser cannot load (a closed port, as for an agent on loopback or behind
    # NAT): the page falls back to the server's relay, which the agent feeds while it is watched.
    report_status(live, key, stream_url="http://127.0.0.1:9/")
    relay = f"/api/v1/machines/{machine_id}/cameras/door/live.mjpg"
    expect(stream).to_have_attribute("src", relay, timeout=POLL)
    expect(via).to_have_text("relayed by the server")
    assert agent_config(live, key).json()["live_view"] is True  # the page watches it
    post_frame(live, key, photo)
    page.wait_for_function(SHOWS_A_FRAME)
    shot(page, "machine-page", full_page=True)

    # A new key: shown once, and the old one stops working.
    page.get_by_role("button", name="Make a new key").click()
    page.locator("dialog.confirm").get_by_role("button", name="Make a new key").click()
    new_key = page.locator("#machine-key").inner_text()
    assert new_key.startswith("tm_") and new_key != key
    assert agent_config(live, key).status_code == 401
    assert agent_config(live, new_key).status_code == 200
    assert page.js_errors == []  # type: ignore[attr-defined]

    # On a phone both pages fit the width.
    log_in(phone)
    for path in ["/machines", f"/machines/{machine_id}"]:
        phone.goto(path)
        ready(phone)
        expect(phone.locator("h1")).to_be_visible()
        assert_fits_width(phone)
    shot(phone, "machine-phone", full_page=True)


def test_deploy_from_a_model_version_page(
    page: Page, live: LiveServer, store: Store, tmp_path_factory: pytest.TempPathFactory
) -> None:
    first_run(page)
    seed_model(store, live.settings, tmp_path_factory)
    machine_id, key = register(store)
    page.goto("/models/trash-tiny/versions/1")
    ready(page)
    page.get_by_role("button", name="Deploy to a machine").click()
    dialog = page.locator("#deploy-dialog")
    expect(dialog).to_be_visible()
    dialog.get_by_label("Machine").select_option(label="pi-kitchen")
    expect(dialog.get_by_label("Pinned to v1")).to_be_checked()
    dialog.get_by_role("button", name="Deploy").click()
    expect(dialog).to_be_hidden()
    expect(page.locator(".toast.ok")).to_contain_text(
        "Deployed trash-tiny v1 to pi-kitchen (pinned)"
    )
    assert agent_config(live, key).json()["deployment"]["version"] == 1

    page.get_by_role("button", name="Deploy to a machine").click()
    expect(dialog.get_by_label("Machine")).to_contain_text("pi-kitchen (now trash-tiny v1)")
    dialog.get_by_label("The newest version of trash-tiny").check()
    dialog.get_by_role("button", name="Deploy").click()
    toast = page.locator(".toast.ok", has_text="following the newest version")
    expect(toast).to_contain_text("Deployed trash-tiny v2 to pi-kitchen")
    toast.get_by_role("link", name="Open the machine").click()
    expect(page).to_have_url(re.compile(rf"/machines/{machine_id}$"))
    ready(page)
    expect(page.locator("#deployment")).to_have_text("trash-tiny v2 (follows the newest version)")
    assert page.js_errors == []  # type: ignore[attr-defined]
