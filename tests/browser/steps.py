"""Steps the browser tests share: set up, log in and out, upload, wait for the count, call the API
with the page's own session."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, expect

from tests.conftest import ADMIN

UPLOAD_TIMEOUT = 30_000


def first_run(page: Page) -> None:
    """An empty install sends the browser to /setup; create the admin there (logs in)."""
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/setup$"))
    expect(page.get_by_role("heading", name="Welcome to tagtrain")).to_be_visible()
    page.get_by_label("Username").fill(ADMIN[0])
    page.get_by_label("Password").fill(ADMIN[1])
    page.get_by_role("button", name="Create admin account").click()
    expect(page).to_have_url(re.compile(r"/$"))
    ready(page)


def ready(page: Page) -> None:
    """Wait until the page's script has wired up its controls."""
    expect(page.locator("body")).to_have_attribute("data-ready", "true")


def log_in(page: Page) -> None:
    page.goto("/login")
    page.get_by_label("Username").fill(ADMIN[0])
    page.get_by_label("Password").fill(ADMIN[1])
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(r"/$"))
    ready(page)
    expect(page.locator("#count")).to_contain_text("image")


def log_out(page: Page) -> None:
    page.locator(".account-menu summary").click()
    page.get_by_role("menuitem", name="Log out").click()
    expect(page).to_have_url(re.compile(r"/login$"))


def api_get(page: Page, path: str, **params: Any) -> Any:
    """GET an API path with the browser's session cookie; returns the JSON answer."""
    res = page.request.get(path, params=params)
    assert res.ok, f"{path}: {res.status} {res.text()}"
    return res.json()


def expect_count(page: Page, text: str) -> None:
    expect(page.locator("#count")).to_have_text(text, timeout=10_000)


def upload_with_picker(page: Page, selector: str, files: list[Path] | Path) -> None:
    """Choose files (or a folder) in one of the data tab's pickers and wait until all are sent."""
    page.set_input_files(selector, files)
    expect(page.locator("#upload-summary")).to_contain_text(" sent.", timeout=UPLOAD_TIMEOUT)


def class_folder(root: Path, photos: list[Path]) -> Path:
    """Copy photos into ``root/<class>/<name>`` (their trashnet class folders) and return root."""
    for p in photos:
        target = root / p.parent.name / p.name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(p, target)
    return root


def tile(page: Page, n: int) -> Any:
    return page.locator("#grid .tile").nth(n)


def dismiss_toasts(page: Page) -> None:
    page.evaluate("document.getElementById('toasts').replaceChildren()")


def go_tab(page: Page, name: str) -> None:
    """Click a tab of the main navigation (Data, Datasets, Models, Machines); wait for its page."""
    link = page.get_by_role("navigation", name="Main").get_by_role("link", name=name, exact=True)
    href = link.get_attribute("href")
    link.click()
    page.wait_for_url(f"**{href}")


def assert_fits_width(page: Page) -> None:
    """Nothing sticks out sideways: the page needs no horizontal scrolling."""
    width = page.evaluate("document.documentElement.scrollWidth")
    viewport = page.viewport_size
    assert viewport is not None
    assert width <= viewport["width"], (
        f"{page.url} is {width}px wide on a {viewport['width']}px screen"
    )
