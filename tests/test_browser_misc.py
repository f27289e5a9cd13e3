"""The browser app's other paths: API errors shown in the page, a dropped zip with a bad entry,
and the browser camera (Chromium's fake device) with snap and burst."""

from __future__ import annotations

import base64
import io
import re
import zipfile

import pytest
from playwright.sync_api import FilePayload, Page, expect

from tests.browser.harness import LiveServer, shot
from tests.browser.steps import expect_count, first_run, go_tab, ready, upload_with_picker
from tests.conftest import trashnet_photos

pytestmark = pytest.mark.browser
pytest_plugins = ["tests.browser.fixtures"]


def test_api_errors_show_in_the_page(page: Page, live: LiveServer) -> None:
    first_run(page)

    # A filter naming a tag that does not exist: the count and a toast say so.
    page.goto("/?tag=nope")
    expect(page.locator("#count")).to_have_text("No tag named 'nope'; see the tag list")
    expect(page.get_by_role("alert")).to_have_count(1)  # one problem, one toast
    expect(page.get_by_role("alert")).to_contain_text("No tag named 'nope'")
    expect(page.locator("#grid-status")).to_contain_text("The images could not be loaded")
    shot(page, "11-error-filter")

    # Bad files in an upload: each row says what is wrong; the good file still goes in.
    page.goto("/")
    page.get_by_role("button", name="Add images").click()
    good = trashnet_photos(1)[0]
    files: list[FilePayload] = [
        {"name": "notes.jpg", "mimeType": "image/jpeg", "buffer": b"not a picture at all"},
        {"name": "empty.png", "mimeType": "image/png", "buffer": b""},
        {"name": good.name, "mimeType": "image/jpeg", "buffer": good.read_bytes()},
    ]
    page.set_input_files("#file-input", files)
    summary = page.locator("#upload-summary")
    expect(summary).to_have_text(
        "3 files sent. 1 added, 0 already stored, 2 files with problems (see below)."
    )
    expect(page.locator(".upload-row.failed")).to_have_count(2)
    expect(page.locator(".upload-row.failed", has_text="notes.jpg")).not_to_contain_text("sending")
    expect(page.locator(".upload-row.ok", has_text=good.name)).to_contain_text("added")
    expect(page.get_by_role("alert").last).to_contain_text("2 files could not be added")
    # When every file of a request is refused the API answers 422 with the same report.
    bad: FilePayload = {"name": "bad.gif", "mimeType": "image/gif", "buffer": b"GIF89a\x00"}
    page.set_input_files("#file-input", [bad])
    expect(summary).to_have_text(
        "1 file sent. 0 added, 0 already stored, 1 file with problems (see below)."
    )
    expect(page.locator(".upload-row.failed", has_text="bad.gif")).not_to_contain_text("422")
    shot(page, "12-error-upload")
    page.keyboard.press("Escape")

    # A dataset name in use: the API's 409 sentence appears as a toast.
    for _ in range(2):
        go_tab(page, "Datasets")
        page.get_by_label("Name", exact=True).fill("twice")
        page.get_by_role("button", name="Create dataset").click()
        page.wait_for_load_state()
    expect(page.get_by_role("alert").last).to_have_text(
        re.compile("A dataset named 'twice' exists already")
    )

    # Pages for things that do not exist say so, with the status.
    res = page.goto("/datasets/nope")
    assert res is not None and res.status == 404
    expect(page.get_by_role("alert")).to_have_text("no dataset named 'nope'; create it first")
    res = page.goto("/images/999999")
    assert res is not None and res.status == 404
    expect(page.get_by_role("alert")).to_have_text("no image with id 999999")

    # The session ends under an open page: the next action says to log in again, with a link.
    page.goto("/")
    expect_count(page, "1 image")
    page.context.clear_cookies()
    page.locator("#select-all").click()
    page.get_by_label("Tags to add or remove").fill("late")
    page.get_by_role("button", name="Add tags").click()
    alert = page.get_by_role("alert").last
    expect(alert).to_contain_text("Your session has ended: log in again.")
    expect(alert.get_by_role("link", name="Log in")).to_have_attribute("href", "/login")
    shot(page, "13-error-session")


def _zip_with_a_bad_entry() -> bytes:
    photos = trashnet_photos(12)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("metal/a.jpg", photos[2].read_bytes())
        zf.writestr("metal/b.jpg", photos[8].read_bytes())
        zf.writestr("glass/c.jpg", photos[1].read_bytes())
        zf.writestr("glass/broken.jpg", photos[7].read_bytes()[:300])
    return buf.getvalue()


DROP_JS = """async ([zipB64, jpgB64]) => {
  const bytes = (b64) => Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  const dt = new DataTransfer();
  dt.items.add(new File([bytes(zipB64)], "sorted.zip", { type: "application/zip" }));
  dt.items.add(new File([bytes(jpgB64)], "loose.jpg", { type: "image/jpeg" }));
  for (const type of ["dragenter", "dragover", "drop"]) {
    document.body.dispatchEvent(new DragEvent(type, { dataTransfer: dt, bubbles: true, cancelable: true }));
  }
}"""


def test_drop_a_zip_and_a_file(page: Page, live: LiveServer) -> None:
    first_run(page)
    expect_count(page, "0 images")
    loose = trashnet_photos(12)[11].read_bytes()
    page.evaluate(
        DROP_JS,
        [base64.b64encode(_zip_with_a_bad_entry()).decode(), base64.b64encode(loose).decode()],
    )
    expect(page.locator("#upload-dialog")).to_be_visible()
    summary = page.locator("#upload-summary")
    expect(summary).to_contain_text("2 files sent. 4 added", timeout=20_000)
    zip_row = page.locator(".upload-row", has_text="sorted.zip")
    expect(zip_row).to_have_class(re.compile("partial"))
    expect(zip_row).to_contain_text("3 added")
    expect(zip_row).to_contain_text("sorted.zip:glass/broken.jpg:")
    expect(page.locator(".upload-row.ok", has_text="loose.jpg")).to_contain_text("added")
    page.keyboard.press("Escape")
    expect_count(page, "4 images")
    tags = {t["name"]: t["count"] for t in page.request.get("/api/v1/tags").json()}
    assert tags == {"metal": 2, "glass": 1}  # folder names in the zip became tags


def test_browser_camera_snap_and_burst(page: Page, live: LiveServer) -> None:
    first_run(page)
    page.get_by_role("button", name="Camera").click()
    expect(page.locator("#camera-status")).to_contain_text("Camera on")
    page.get_by_role("button", name="Snap").click()
    expect(page.locator("#camera-list .upload-row.ok")).to_have_count(1)
    page.locator("#burst-rate").select_option("10")
    page.locator("#burst-count").select_option("10")
    page.get_by_role("button", name="Start burst").click()
    expect(page.locator("#shot-count")).to_have_text("11")
    expect(page.get_by_role("button", name="Start burst")).to_be_visible()  # the burst ended
    expect(page.locator("#camera-list .upload-row.ok")).to_have_count(11, timeout=20_000)
    shot(page, "14-camera")
    page.get_by_role("button", name="Close").last.click()
    expect_count(page, "11 images")
    first = page.request.get("/api/v1/images", params={"limit": 1}).json()["items"][0]
    assert first["original_name"].startswith("camera-")
    assert first["mime"] == "image/jpeg"


def test_upload_options_apply_tags_and_dataset(page: Page, live: LiveServer) -> None:
    first_run(page)
    page.get_by_role("button", name="Add images").click()
    tags = page.locator("#upload-dialog").get_by_label("Tags for every new image")
    tags.fill("batch one")
    tags.press("Enter")
    page.locator("#upload-options input[name=dataset]").fill("inbox")
    upload_with_picker(page, "#file-input", trashnet_photos(3))
    page.keyboard.press("Escape")
    expect_count(page, "3 images")
    stats = page.request.get("/api/v1/datasets/inbox").json()
    assert stats["images"] == 3
    assert stats["tag_counts"] == {"batch one": 3}


def test_image_view_edits_and_bulk_delete(page: Page, live: LiveServer) -> None:
    first_run(page)
    page.get_by_role("button", name="Add images").click()
    upload_with_picker(page, "#file-input", trashnet_photos(4))
    page.keyboard.press("Escape")
    expect_count(page, "4 images")

    # Bulk add to a dataset and remove from it.
    page.locator("#grid .tile .pick").nth(0).click()
    page.locator("#grid .tile .pick").nth(1).click()
    page.locator("#bulk-dataset").fill("pair")
    page.get_by_role("button", name="Add to dataset").click()
    expect(page.locator(".toast.ok").last).to_contain_text("2 images added to “pair”")
    page.get_by_role("button", name="Remove from dataset").click()
    expect(page.locator(".toast.ok").last).to_contain_text("2 images removed from “pair”")
    assert page.request.get("/api/v1/datasets/pair").json()["images"] == 0
    page.get_by_role("button", name="Clear", exact=True).click()

    # Bulk delete asks first; Cancel keeps the images.
    page.locator("#grid .tile .pick").first.click()
    page.get_by_role("button", name="Delete…").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("Delete 1 image?")
    dialog.get_by_role("button", name="Cancel").click()
    expect_count(page, "4 images")
    page.get_by_role("button", name="Delete…").click()
    page.get_by_role("dialog").get_by_role("button", name="Delete 1 image").click()
    expect_count(page, "3 images")
    expect(page.locator("#grid .tile")).to_have_count(3)

    # The image view: add a tag (the datalist suggests known ones), remove it, datasets, delete.
    page.locator("#grid .tile .thumb").first.click()
    expect(page).to_have_url(re.compile(r"/images/\d+$"))
    ready(page)
    add_tag = page.get_by_label("Add a tag")
    add_tag.fill("alpha")
    add_tag.press("Enter")
    expect(page.locator("#tags .chip")).to_have_text(["alpha✕"])
    page.get_by_role("button", name="Remove alpha").click()
    expect(page.locator("#tags")).to_have_text("No tags yet.")
    expect(page.locator("#tag-options option[value=alpha]")).to_have_count(1)  # autocomplete
    add_ds = page.get_by_label("Add to a dataset")
    add_ds.fill("set-a")
    add_ds.press("Enter")
    expect(page.locator("#datasets .chip a")).to_have_text(["set-a"])
    assert page.request.get("/api/v1/datasets/set-a").json()["images"] == 1
    page.get_by_role("button", name="Remove set-a").click()
    expect(page.locator("#datasets")).to_have_text("In no dataset.")
    expect(page.locator("#position")).to_have_text("1 of 3 images")
    page.get_by_role("button", name="Next →").click()
    expect(page.locator("#position")).to_have_text("2 of 3 images")
    page.get_by_role("button", name="Delete this image…").click()
    page.get_by_role("dialog").get_by_role("button", name="Delete").click()
    expect(page.locator("#position")).to_have_text("2 of 2 images")
    page.keyboard.press("Escape")
    expect(page).to_have_url(re.compile(r"/$"))
    expect_count(page, "2 images")


def test_account_page_keys_and_people(page: Page, live: LiveServer) -> None:
    first_run(page)
    page.locator(".account-menu summary").click()
    page.get_by_role("menuitem", name="Account and API keys").click()
    ready(page)
    page.get_by_label("Key name").fill("my script")
    page.get_by_role("button", name="Create key").click()
    token = page.locator("#new-token")
    expect(token).to_contain_text("New key “my script”: tt_")
    key = re.search(r"(tt_\S+)", token.inner_text())
    assert key is not None
    res = page.request.get("/api/v1/me", headers={"Authorization": f"Bearer {key.group(1)}"})
    assert res.json()["username"] == "admin"
    page.locator("#key-rows").get_by_role("button", name="Revoke").click()
    page.get_by_role("dialog").get_by_role("button", name="Revoke").click()
    expect(page.locator("#key-rows")).to_contain_text("revoked")

    people = page.locator("#new-user")
    people.get_by_label("Username").fill("sam")
    people.get_by_label("Password").fill("short")
    people.get_by_role("button", name="Add person").click()  # the browser refuses < 8 characters
    people.get_by_label("Password").fill("long enough password")
    people.get_by_role("button", name="Add person").click()
    expect(page.locator("#user-rows")).to_contain_text("sam")
    shot(page, "16-account")
