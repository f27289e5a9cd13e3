"""The real app served by uvicorn in a background thread, and Debian's chromium to drive it.

Nothing is mocked: the server runs ``create_app`` over a temporary data folder (SQLite and files),
and the browser is the system's ``chromium`` (never a Playwright-downloaded one).
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import uvicorn
from playwright.sync_api import Browser, Page, Playwright, ViewportSize

from tagtrain.server import create_app
from tagtrain.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    # A fake camera (a moving test pattern) that needs no permission prompt, for the camera test.
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
]
DESKTOP: ViewportSize = {"width": 1280, "height": 860}
PHONE: ViewportSize = {"width": 390, "height": 844}


def chromium_path() -> str:
    """The system chromium; skip without it, unless TAGTRAIN_REQUIRE_BROWSER=1 (CI) says fail."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    message = "Debian's chromium is not installed (apt-get install chromium)"
    if os.environ.get("TAGTRAIN_REQUIRE_BROWSER") == "1":
        pytest.fail(message + "; TAGTRAIN_REQUIRE_BROWSER=1 makes that an error")
    pytest.skip(message)


def launch(playwright: Playwright) -> Browser:
    return playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)


@dataclass
class LiveServer:
    url: str
    settings: Settings


@contextmanager
def serve(data: Path, *, worker: bool = False, port: int = 0) -> Iterator[LiveServer]:
    """Serve a fresh app over ``data`` on 127.0.0.1:``port`` (0: a free one) until the block
    ends; with ``worker`` the app runs its training worker process beside it, as ``tagtrain
    serve`` does. A chosen port lets a test stop the server and bring it back at one address."""
    settings = Settings(data=data, worker=worker)
    app = create_app(settings)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # no 40 ms delayed-ACK stalls
    sock.bind(("127.0.0.1", port))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app, log_level="warning", access_log=False, lifespan="on", timeout_graceful_shutdown=2
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    try:
        yield LiveServer(f"http://127.0.0.1:{port}", settings)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def shot(page: Page, name: str, *, full_page: bool = False) -> Path:
    """Save a screenshot of the page into test-artifacts/screenshots/<name>.png."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page, animations="disabled")
    return path


README_SHOT = ROOT / "docs" / "screenshot-data.png"
README_SHOT_MAX = 300_000


def save_readme_screenshot(
    page: Page, target: Path = README_SHOT, *, full_page: bool = False, max_height: int = 0
) -> Path:
    """The page as it shows now, for the README (the data tab unless ``target`` says another
    file under docs/): a palette PNG small enough to commit (< 300 KB). ``full_page`` takes the
    whole page, cut at ``max_height`` pixels when that is set."""
    from io import BytesIO

    from PIL import Image

    shot = page.screenshot(full_page=full_page, animations="disabled")
    full = Image.open(BytesIO(shot)).convert("RGB")
    if max_height:
        full = full.crop((0, 0, full.width, min(full.height, max_height)))
    target.parent.mkdir(parents=True, exist_ok=True)
    for width, colors in ((1280, 256), (1100, 192), (960, 128), (800, 96)):
        small = full.resize(
            (width, round(full.height * width / full.width)), Image.Resampling.LANCZOS
        )
        small.quantize(colors, method=Image.Quantize.MEDIANCUT).save(target, optimize=True)
        if target.stat().st_size < README_SHOT_MAX:
            break
    return target
