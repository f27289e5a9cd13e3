"""pytest fixtures of the browser tests; a test module loads them with
``pytest_plugins = ["tests.browser.fixtures"]``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Page,
    ViewportSize,
    sync_playwright,
)

from tests.browser.harness import DESKTOP, PHONE, LiveServer, chromium_path, launch, serve


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    chromium_path()  # skip or fail before starting Playwright
    with sync_playwright() as pw:
        b = launch(pw)
        yield b
        b.close()


@pytest.fixture
def live(tmp_path: Path) -> Iterator[LiveServer]:
    with serve(tmp_path / "data") as server:
        yield server


def _context(
    browser: Browser, live: LiveServer, viewport: ViewportSize, *, mobile: bool = False
) -> BrowserContext:
    ctx = browser.new_context(
        viewport=viewport,
        base_url=live.url,
        is_mobile=mobile,
        has_touch=mobile,
        device_scale_factor=2 if mobile else 1,
    )
    ctx.set_default_timeout(10_000)
    return ctx


def _page(ctx: BrowserContext) -> Page:
    page = ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))

    def console(msg: ConsoleMessage) -> None:
        if msg.type == "error" and "Failed to load resource" not in msg.text:
            errors.append(msg.text)

    page.on("console", console)
    page.js_errors = errors  # type: ignore[attr-defined]
    return page


@pytest.fixture
def page(browser: Browser, live: LiveServer) -> Iterator[Page]:
    ctx = _context(browser, live, DESKTOP)
    yield _page(ctx)
    ctx.close()


@pytest.fixture
def phone(browser: Browser, live: LiveServer) -> Iterator[Page]:
    ctx = _context(browser, live, PHONE, mobile=True)
    yield _page(ctx)
    ctx.close()
