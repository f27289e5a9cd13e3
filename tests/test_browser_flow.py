"""From an empty install to a labeled dataset of trashnet photos, in a real browser: first run,
log in, upload (a folder whose names become tags, and loose files), filter, bulk tag, keyboard
labeling, a dataset with its counts and warnings, log out. Once at desktop width, once on a phone.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.browser.harness import LiveServer, save_readme_screenshot, shot
from tests.browser.steps import (
    api_get,
    assert_fits_width,
    class_folder,
    dismiss_toasts,
    expect_count,
    first_run,
    go_tab,
    log_in,
    log_out,
    tile,
    upload_with_picker,
)
from tests.conftest import trashnet_photos

pytestmark = pytest.mark.browser
pytest_plugins = ["tests.browser.fixtures"]
CLASSES = ["cardboard", "glass", "metal", "paper", "plastic", "trash"]


def true_class(name: str) -> str:
    """The trashnet class of a photo from its file name (``glass106.jpg`` is glass)."""
    return re.sub(r"\d+\.jpg$", "", Path(name).name)


def test_empty_install_to_labeled_dataset(page: Page, live: LiveServer, tmp_path: Path) -> None:
    page.goto("/")
    shot(page, "01-setup")
    first_run(page)
    log_out(page)
    shot(page, "02-login")
    log_in(page)
    expect_count(page, "0 images")
    expect(page.locator("#empty")).to_be_visible()

    # Upload: a folder of class folders (the names become tags) and 30 loose, untagged files.
    photos = trashnet_photos(48)
    page.get_by_role("button", name="Add images").click()
    upload_with_picker(page, "#folder-input", class_folder(tmp_path / "trash", photos[:18]))
    expect(page.locator("#upload-summary")).to_have_text(
        "18 files sent. 18 added, 0 already stored."
    )
    upload_with_picker(page, "#file-input", photos[18:])
    expect(page.locator("#upload-summary")).to_have_text(
        "30 files sent. 30 added, 0 already stored."
    )
    expect(page.locator(".upload-row.ok")).to_have_count(48)
    shot(page, "03-upload")
    page.keyboard.press("Escape")
    expect_count(page, "48 images")
    assert {t["name"]: t["count"] for t in api_get(page, "/api/v1/tags")} == dict.fromkeys(
        CLASSES, 3
    )

    # Filter by a tag: the live count, the grid and the URL follow.
    tags = page.get_by_label("Filter by tags")
    tags.fill("glass")
    tags.press("Enter")
    expect_count(page, "3 images match the filter")
    expect(page.locator("#grid .tile")).to_have_count(3)
    assert "tag=glass" in page.url

    # Bulk tag everything matching the filter.
    page.locator("#select-all").click()
    expect(page.locator("#sel-count")).to_have_text("All 3 images matching the filter selected")
    bulk_tags = page.get_by_label("Tags to add or remove")
    bulk_tags.fill("recyclable")
    bulk_tags.press("Enter")
    page.get_by_role("button", name="Add tags").click()
    expect(page.locator(".toast.ok").last).to_contain_text("Added recyclable: 3 changes")
    assert api_get(page, "/api/v1/images/count", tag="recyclable")["count"] == 3
    dismiss_toasts(page)

    # Select a range with shift-click among the untagged ones; add a tag, then take it off again.
    page.get_by_role("button", name="Clear filters").click()
    page.get_by_label("Only untagged images").check()
    expect_count(page, "30 images match the filter")
    tile(page, 0).locator(".pick").click()
    tile(page, 4).locator(".pick").click(modifiers=["Shift"])
    expect(page.locator("#sel-count")).to_have_text("5 images selected")
    expect(page.locator("#grid .tile.selected")).to_have_count(5)
    bulk_tags.fill("blurry")
    bulk_tags.press("Enter")
    page.get_by_role("button", name="Add tags").click()
    expect(page.locator("#grid .tile-tags", has_text="blurry")).to_have_count(5)
    bulk_tags.fill("blurry")
    bulk_tags.press("Enter")
    page.get_by_role("button", name="Remove tags").click()
    expect(page.locator("#grid .tile-tags", has_text="blurry")).to_have_count(0)
    shot(page, "04-data-selection")
    page.keyboard.press("Escape")
    expect(page.locator("#bulkbar")).to_be_hidden()

    # Keyboard labeling: open the untagged ones one at a time; the right key labels and advances.
    page.get_by_role("link", name="Label with keys").click()
    expect(page).to_have_url(re.compile(r"/images/\d+\?untagged=true$"))
    keys = page.locator("#keys button")
    expect(keys).to_have_count(7)  # the six classes and "recyclable", alphabetical
    labels = [re.sub(r"^\d\s*", "", k) for k in keys.all_inner_texts()]
    assert labels == ["cardboard", "glass", "metal", "paper", "plastic", "recyclable", "trash"]
    labeled: dict[int, str] = {}
    for i in range(10):
        expect(page.locator("#position")).to_have_text(re.compile(r"^1 of \d+ images$"))
        if i == 0:
            shot(page, "05-image-view")
        image_id = int(page.url.split("/images/")[1].split("?")[0])
        name = page.locator("#meta dd").first.inner_text()
        page.keyboard.press(str(labels.index(true_class(name)) + 1))
        labeled[image_id] = true_class(name)
        expect(page).not_to_have_url(re.compile(rf"/images/{image_id}\?"))
    page.keyboard.press("ArrowLeft")  # back to the last one labeled: its key shows as on
    expect(page.locator("#keys button.on")).to_have_text(re.compile(list(labeled.values())[-1]))
    page.keyboard.press("ArrowRight")
    for image_id, cls in labeled.items():
        assert api_get(page, f"/api/v1/images/{image_id}")["tags"] == [cls]
    assert api_get(page, "/api/v1/images/count", untagged="true")["count"] == 20

    # A dataset: create it, fill it from the data tab, read its counts and warnings.
    go_tab(page, "Datasets")
    page.get_by_label("Name", exact=True).fill("trash-sorting")
    page.get_by_role("button", name="Create dataset").click()
    expect(page).to_have_url(re.compile(r"/datasets/trash-sorting$"))
    expect(page.locator("#warnings")).to_contain_text("The dataset is empty")
    go_tab(page, "Data")
    expect_count(page, "48 images")
    expect(page.locator("#grid .tile")).to_have_count(48)
    shot(page, "06-data")
    save_readme_screenshot(page)
    page.locator("#select-all").click()
    page.locator("#bulk-dataset").fill("trash-sorting")
    page.get_by_role("button", name="Add to dataset").click()
    expect(page.locator(".toast.ok").last).to_contain_text("48 images added to “trash-sorting”")
    page.get_by_role("link", name="Open the dataset").click()
    expect(page.get_by_role("heading", name="trash-sorting")).to_be_visible()
    stats = api_get(page, "/api/v1/datasets/trash-sorting")
    bars = page.locator("#bars li")
    expect(bars).to_have_count(len(stats["tag_counts"]) + 1)  # the labels and "untagged"
    expect(bars.filter(has_text="glass")).to_contain_text(str(stats["tag_counts"]["glass"]))
    expect(page.locator("#untagged-count")).to_have_text("20")
    warnings = page.locator("#warnings li")
    expect(warnings.filter(has_text="Fewer than 10 images on these labels")).to_have_count(1)
    expect(warnings.filter(has_text="Only 58% of the images are labeled")).to_have_count(1)
    shot(page, "07-dataset", full_page=True)
    # From the dataset page, keyboard labeling uses that dataset's tags for the keys.
    page.get_by_role("link", name="Label with keys").click()
    expect(page.locator("#keys-source")).to_have_text("(tags of “trash-sorting”)")
    expect(page.locator("#keys button")).to_have_count(len(stats["tag_counts"]))
    assert "dataset=trash-sorting" in page.url
    go_tab(page, "Datasets")
    expect(page.locator("#dataset-table")).to_contain_text("trash-sorting")
    shot(page, "08-datasets")
    for name, tab in (("Models", "09-models"), ("Machines", "10-machines")):
        go_tab(page, name)
        expect(page.get_by_role("heading", name=name, exact=True)).to_be_visible()
        shot(page, tab)

    # Log out: pages go to the login form and the API refuses the old session.
    log_out(page)
    page.goto("/datasets")
    expect(page).to_have_url(re.compile(r"/login$"))
    refused = page.request.get("/api/v1/images")
    assert refused.status == 401
    assert "log in" in refused.json()["detail"]
    assert page.js_errors == []  # type: ignore[attr-defined]


def test_phone_width_flow(phone: Page, live: LiveServer) -> None:
    page = phone
    first_run(page)
    expect_count(page, "0 images")
    assert_fits_width(page)

    # The phone's camera button is a file input with capture="environment".
    take = page.locator("#phone-input")
    assert take.get_attribute("capture") == "environment"
    expect(page.locator("#phone-photo")).to_be_visible()
    photos = trashnet_photos(12)
    upload_with_picker(page, "#phone-input", photos)
    expect(page.locator("#upload-summary")).to_have_text(
        "12 files sent. 12 added, 0 already stored."
    )
    page.get_by_role("button", name="Close").first.click()
    expect_count(page, "12 images")
    assert_fits_width(page)

    # Filters fold away on a phone; open them, filter, fold them again.
    filters = page.locator("#filter-panel")
    expect(filters).not_to_have_attribute("open", "")
    filters.locator("summary").click()
    page.get_by_label("Only untagged images").check()
    expect_count(page, "12 images match the filter")
    filters.locator("summary").click()
    shot(page, "phone-01-data")

    # Select with taps: the first checkbox, then a plain tap on another tile.
    tile(page, 0).locator(".pick").tap()
    tile(page, 1).locator("img").tap()
    expect(page.locator("#sel-count")).to_have_text("2 images selected")
    bulk_tags = page.get_by_label("Tags to add or remove")
    bulk_tags.fill("phone")
    bulk_tags.press("Enter")
    page.get_by_role("button", name="Add tags").tap()
    expect(page.locator("#grid .tile-tags", has_text="phone")).to_have_count(2)
    shot(page, "phone-02-selection")
    page.get_by_role("button", name="Clear", exact=True).tap()
    assert_fits_width(page)

    # Label by tapping the label buttons, with a key list of our own.
    page.get_by_role("link", name="Label with keys").tap()
    expect(page).to_have_url(re.compile(r"/images/\d+\?untagged=true$"))
    # A key list of our own, given in the URL as the "Change the keys" box would write it.
    # (Typing it into that box at phone width did not apply in this test: see the issue note.)
    page.goto(page.url + "&labels=" + ",".join(CLASSES))
    expect(page.locator("#keys button")).to_have_count(6)
    for _ in range(3):
        name = page.locator("#meta dd").first.inner_text()
        before = page.url
        page.locator("#keys button", has_text=true_class(name)).tap()
        expect(page).not_to_have_url(before)
    assert api_get(page, "/api/v1/images/count", untagged="true")["count"] == 12 - 2 - 3
    assert_fits_width(page)
    shot(page, "phone-03-image")

    # Everything into a new dataset from the bulk bar; its page; rename; delete.
    page.locator("#back").tap()
    page.locator("#filter-panel summary").tap()
    page.get_by_role("button", name="Clear filters").tap()
    expect_count(page, "12 images")
    page.locator("#select-all").tap()
    page.locator("#bulk-dataset").fill("phone-set")
    page.get_by_role("button", name="Add to dataset").tap()
    expect(page.locator(".toast.ok").last).to_contain_text("12 images added to “phone-set”")
    page.get_by_role("link", name="Open the dataset").tap()
    stats = api_get(page, "/api/v1/datasets/phone-set")
    expect(page.locator("#bars li")).to_have_count(len(stats["tag_counts"]) + 1)  # + untagged
    expect(page.locator("#warnings")).to_contain_text("Fewer than 10 images")
    assert_fits_width(page)
    shot(page, "phone-04-dataset", full_page=True)
    page.get_by_label("Name", exact=True).fill("phone set 2")
    page.get_by_role("button", name="Save").tap()
    expect(page).to_have_url(re.compile(r"/datasets/phone%20set%202$"))
    page.get_by_role("button", name="Delete dataset…").tap()
    page.get_by_role("dialog").get_by_role("button", name="Delete dataset").tap()
    expect(page).to_have_url(re.compile(r"/datasets$"))
    expect(page.locator("#no-datasets")).to_be_visible()
    assert api_get(page, "/api/v1/images/count")["count"] == 12  # the images stay

    log_out(page)
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/login$"))
    assert page.js_errors == []  # type: ignore[attr-defined]
