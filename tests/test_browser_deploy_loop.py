"""The whole loop in a real browser, with nothing played by the test: a dataset imported with the
CLI, model v1 trained by the worker from the Train form, a machine registered on the Machines page,
the real agent started with the one command the page shows (a subprocess), a camera added and
"latest" deployed from the machine page, the live stream and predictions on that page, the frames
the model is unsure about arriving on the Data tab, labeled with keys and added to the dataset,
v2 trained, and the machine switching to v2 by itself. It saves the README's machine screenshot.
"""

from __future__ import annotations

import re
import signal
import subprocess
import time
from io import BytesIO
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps
from playwright.sync_api import Browser, Page, expect

from tests.agent_live import free_port
from tests.browser.harness import DESKTOP, ROOT, save_readme_screenshot, serve, shot
from tests.browser.steps import api_get, class_folder, first_run, go_tab, ready
from tests.camera_sources import image_folder
from tests.conftest import TRASHNET
from tests.running import clean_env, cli, tagtrain_exe

pytestmark = [pytest.mark.browser, pytest.mark.slow]
pytest_plugins = ["tests.browser.fixtures"]

CLASSES = ["cardboard", "glass", "metal"]
PER_CLASS = 12  # the training photos of each class; the camera shows others
MODEL = "trash3"
MACHINE = "pi-bin"
CAMERA = "bin"
MACHINE_SHOT = ROOT / "docs" / "screenshot-machine.png"
POLL = 15_000  # the machine page polls every 5 s
TRAINING = 180_000


def photos_of(cls: str, start: int, stop: int) -> list[Path]:
    return sorted((TRASHNET / cls).glob("*.jpg"))[start:stop]


def fingerprint(data: bytes) -> np.ndarray:
    """A tiny grey picture of an image, to tell which photo a camera frame shows."""
    picture = ImageOps.exif_transpose(Image.open(BytesIO(data))).convert("L")
    return np.asarray(picture.resize((24, 24), Image.Resampling.BILINEAR), dtype=np.float32)


def train_from_dataset_page(page: Page, *, unticked: tuple[str, ...] = ()) -> None:
    """Press Train on the dataset's page as it comes (checking that the tags in ``unticked`` are
    not offered as classes) and wait until the job's page says it completed."""
    page.goto(f"/datasets/{MODEL}")
    expect(page.locator("#train-form")).to_have_attribute("data-ready", "true")
    expect(page.get_by_label("Model", exact=True)).to_have_value(MODEL)
    for name in unticked:
        expect(page.locator("#train-labels").get_by_label(name)).not_to_be_checked()
        expect(page.locator("#train-previous")).to_contain_text(f"Not ticked: {name}")
    page.get_by_role("button", name="Train").click()
    expect(page).to_have_url(re.compile(r"/jobs/\d+$"))
    expect(page.locator("#job-state")).to_have_text("completed", timeout=TRAINING)


def stream_loads_frames(page: Page) -> None:
    """The machine page's live <img> shows the agent's MJPEG stream (a decoded frame)."""
    stream = page.locator("#streams img")
    expect(stream).to_have_count(1, timeout=POLL)
    page.wait_for_function("document.querySelector('#streams img').naturalWidth > 0", timeout=POLL)


def reload_until_tiles(page: Page, at_least: int, timeout_s: float = 60) -> int:
    """Reload the (filtered) data tab until it shows ``at_least`` thumbnails; how many it shows."""
    deadline = time.monotonic() + timeout_s
    while True:
        page.reload()
        ready(page)
        expect(page.locator("#count")).not_to_have_text("Counting…")
        n = page.locator("#grid .tile").count()
        if n >= at_least or time.monotonic() > deadline:
            assert n >= at_least, f"only {n} captures arrived in {timeout_s:.0f} s"
            return n
        page.wait_for_timeout(1000)


def test_deploy_capture_label_retrain_and_switch(
    browser: Browser, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TAGTRAIN_TRAIN_TIME_BUDGET_S", "4")  # the worker's fine-tune budget
    agent_env = clean_env()
    data = tmp_path / "data"
    folders = class_folder(
        tmp_path / "photos", [p for c in CLASSES for p in photos_of(c, 0, PER_CLASS)]
    )
    imported = cli("import", folders, "--dataset", MODEL, "--tags-from-folders", "--data", data)
    assert imported.returncode == 0, imported.stderr
    # The camera: a folder of photos the model never saw, two of each class.
    seen = [p for c in CLASSES for p in photos_of(c, PER_CLASS, PER_CLASS + 2)]
    frames = image_folder(tmp_path / "camera", len(seen), photos=seen)
    truth = [(fingerprint(p.read_bytes()), p.parent.name) for p in seen]

    with serve(data, worker=True) as live:
        ctx = browser.new_context(viewport=DESKTOP, base_url=live.url)
        ctx.set_default_timeout(10_000)
        page = ctx.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        first_run(page)

        # v1, from the dataset's Train form.
        train_from_dataset_page(page)
        page.get_by_role("link", name="Open the report").click()
        expect(page).to_have_url(re.compile(rf"/models/{MODEL}/versions/1$"))

        # Register a machine; its key is shown once.
        go_tab(page, "Machines")
        ready(page)
        page.get_by_label("Machine name").fill(MACHINE)
        page.get_by_role("button", name="Register").click()
        key = page.locator("#machine-key").inner_text()
        command = page.locator("#agent-command").inner_text()
        assert command == f"tagtrain agent --server {live.url} --machine-key {key}"

        # The agent: the page's command, plus where to keep its state and listen.
        port = free_port()
        log_path = tmp_path / "agent.log"
        with log_path.open("wb") as log:
            agent = subprocess.Popen(
                [tagtrain_exe(), *command.split()[1:], "--state", str(tmp_path / "agent"),
                 "--listen", f"127.0.0.1:{port}", "--poll", "0.5"],
                stdout=log, stderr=subprocess.STDOUT, env=agent_env,
            )  # fmt: skip
        try:
            run_the_loop(page, agent, frames, truth, port)
        finally:
            ctx.close()
            if agent.poll() is None:
                agent.send_signal(signal.SIGTERM)
            try:
                code = agent.wait(timeout=30)
            except subprocess.TimeoutExpired:
                agent.kill()
                raise
        agent_log = log_path.read_text()
        assert code == 0, agent_log
        assert "Traceback" not in agent_log, agent_log
        assert "HTTP Request" not in agent_log  # one line per event, not one per request
        assert errors == []


def run_the_loop(
    page: Page,
    agent: subprocess.Popen[bytes],
    frames: Path,
    truth: list[tuple[np.ndarray, str]],
    port: int,
) -> None:
    card = page.locator(f'.machine[data-machine="{MACHINE}"]')
    expect(card).to_contain_text("online", timeout=POLL)
    card.get_by_role("link", name=MACHINE).click()
    expect(page).to_have_url(re.compile(r"/machines/\d+$"))
    ready(page)
    machine_url = page.url

    # A camera on the folder of photos, keeping the frames the model is unsure about.
    page.get_by_role("button", name="Add camera").click()
    camera = page.locator("fieldset.cam-config").first
    camera.get_by_label("Name", exact=True).fill(CAMERA)
    camera.get_by_label("Source", exact=True).fill(str(frames))
    camera.get_by_label("Max fps", exact=True).fill("4")
    camera.get_by_label("Capture frequency (Hz)", exact=True).fill("2")
    camera.get_by_label("Tags for captures", exact=True).fill("from-machine")
    camera.get_by_label("Min confidence", exact=True).fill("0")
    camera.get_by_label("Max confidence", exact=True).fill("0.99")
    page.get_by_role("button", name="Save config").click()
    expect(page.locator(".toast.ok")).to_contain_text("Config saved")

    # Deploy "latest": the machine serves v1, streams and predicts.
    page.locator("#deploy-model").select_option(MODEL)
    page.locator("#deploy-version").select_option("")
    page.get_by_role("button", name="Deploy", exact=True).click()
    expect(page.locator("#deployment")).to_have_text(f"{MODEL} v1 (follows the newest version)")
    summary = page.locator("#machine-summary")
    expect(summary).to_contain_text("Online", timeout=POLL)
    expect(summary).to_contain_text(f"serving {MODEL}@1", timeout=POLL)
    stream_loads_frames(page)
    assert page.locator("#streams img").get_attribute("src") == (
        f"http://127.0.0.1:{port}/stream/{CAMERA}.mjpg"
    )
    expect(page.locator("#recent li").first).to_contain_text(CAMERA, timeout=POLL)
    expect(page.locator("#fps")).to_contain_text(re.compile(rf"{CAMERA} \d+\.\d fps"))
    shot(page, "loop-machine-v1")

    # The captures arrive on the Data tab, filtered by this machine.
    page.get_by_role("link", name="Its captures on the Data tab").click()
    expect(page).to_have_url(re.compile(rf"/\?source=machine&machine={MACHINE}$"))
    ready(page)
    expect(page.locator("#filter-form select[name=machine]")).to_have_value(MACHINE)
    reload_until_tiles(page, 3)
    tiles = page.locator("#grid .tile")
    page.wait_for_function(
        "[...document.querySelectorAll('#grid .tile img')].every((i) => i.complete && i.naturalWidth > 0)"
    )
    for text in tiles.locator(".tile-tags").all_inner_texts():
        assert text == "from-machine"
    shot(page, "loop-captures")
    tiles.first.locator("a.thumb").click()
    expect(page).to_have_url(re.compile(r"/images/\d+\?"))
    ready(page)
    meta = page.locator("#meta")
    expect(meta).to_contain_text(f"Source{'machine'}")
    expect(meta).to_contain_text(f"Machine{MACHINE}")
    expect(meta).to_contain_text(f"Camera{CAMERA}")

    # Label them with keys 1-3, from the newest to the oldest.
    page.goto(f"/?source=machine&machine={MACHINE}")
    ready(page)
    page.get_by_role("link", name="Label with keys").click()
    expect(page).to_have_url(re.compile(r"/images/\d+\?"))
    ready(page)
    page.locator(".edit-keys summary").click()
    page.get_by_label("Labels for keys 1 to 9, comma separated").fill(", ".join(CLASSES))
    page.keyboard.press("Enter")
    expect(page.locator("#keys-source")).to_have_text("(your list)")
    ready(page)
    labeled: dict[int, str] = {}  # newer captures arriving meanwhile come before the first
    last = "That was the last image in this list."
    while not page.locator(".toast.ok", has_text=last).is_visible():
        image_id = int(page.url.split("/images/")[1].split("?")[0])
        assert image_id not in labeled, f"image {image_id} came round again"
        label = shown_class(page, image_id, truth)
        page.keyboard.press(str(CLASSES.index(label) + 1))
        labeled[image_id] = label
        page.wait_for_function(
            """([id, last]) => !location.pathname.endsWith(`/images/${id}`) ||
                [...document.querySelectorAll(".toast")].some((t) => t.textContent.includes(last))""",
            arg=[image_id, last],
        )
    assert len(labeled) >= 3
    for image_id, label in labeled.items():
        assert sorted(api_get(page, f"/api/v1/images/{image_id}")["tags"]) == sorted(
            [label, "from-machine"]
        )

    # Add the labeled captures to the dataset, from the Data tab.
    query = "&".join(f"tag={c}" for c in CLASSES)
    page.goto(f"/?machine={MACHINE}&{query}")
    ready(page)
    expect(page.locator("#grid .tile")).to_have_count(len(labeled))
    page.locator("#select-all").click()
    page.locator("#bulk-dataset").fill(MODEL)
    page.get_by_role("button", name="Add to dataset").click()
    expect(page.locator(".toast.ok").last).to_contain_text(
        f"{len(labeled)} image{'s' if len(labeled) != 1 else ''} added to “{MODEL}”"
    )

    # v2: the same form starts from v1's labels, so the capture tag is not a class.
    train_from_dataset_page(page, unticked=("from-machine",))
    page.get_by_role("link", name="Open the report").click()
    expect(page).to_have_url(re.compile(rf"/models/{MODEL}/versions/2$"))

    # The machine switches to v2 by itself: the agent was not touched.
    assert agent.poll() is None
    page.goto(machine_url)
    ready(page)
    expect(page.locator("#deployment")).to_have_text(f"{MODEL} v2 (follows the newest version)")
    expect(page.locator("#machine-summary")).to_contain_text(f"serving {MODEL}@2", timeout=POLL)
    stream_loads_frames(page)
    expect(page.locator("#recent li")).to_have_count(5, timeout=POLL)  # 5 kept, 1 s apart
    ages = [int(a) for a in re.findall(r"· (\d+) s ago", page.locator("#recent").inner_text())]
    assert len(ages) == 5 and ages == sorted(ages), f"not newest first: {ages}"
    page.wait_for_timeout(500)  # a fresh frame or two, with v2's labels drawn on
    save_readme_screenshot(page, MACHINE_SHOT)
    assert MACHINE_SHOT.stat().st_size < 300_000

    # Stopping the agent (while its stream is watched) is quick and clean.
    started = time.monotonic()
    agent.send_signal(signal.SIGTERM)
    assert agent.wait(timeout=30) == 0
    stopped_in = time.monotonic() - started
    assert stopped_in < 5, f"the agent took {stopped_in:.1f} s to stop"


def shown_class(page: Page, image_id: int, truth: list[tuple[np.ndarray, str]]) -> str:
    """The class of the camera photo a capture shows (what a person sees in it)."""
    url = api_get(page, f"/api/v1/images/{image_id}")["original_url"]
    res = page.request.get(url)
    assert res.ok, f"{url}: {res.status}"
    seen = fingerprint(res.body())
    return min(truth, key=lambda t: float(np.abs(t[0] - seen).mean()))[1]
