"""The demo page in headless Chromium (Debian's, driven by Playwright): a user picks an image and a
PDF, watches them upload, sees them listed with their versions as they arrive (through the GraphQL
subscription, or by polling in a browser without WebSocket), downloads the private PDF through its
signed link, and reads errors in words. Also GraphiQL at /graphql, and the docs' plain fetch recipes
(docs/frontend.md) run as they are written."""

from __future__ import annotations

import base64
import io
import json
import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from PIL import Image

from app.graphiql import EXAMPLE_DOCUMENT
from tests import files
from tests.browser_support import ARTIFACTS, browser, page, playwright_api
from tests.live import LiveServer, live_server
from tests.recipes import recipe

pytestmark = pytest.mark.browser
# The demo page on both storage backends: SeaweedFS (form POSTs) and Azurite (PUTs with headers).
BOTH_BACKENDS = pytest.mark.parametrize("live_server", ["s3", "azure"], indirect=True)
# How long the page may take to show the thumb version: the worker builds it in the background.
THUMB_TIMEOUT_MS = 60_000

__all__ = ["browser", "live_server", "page"]  # fixtures, imported for pytest


def photo_png(width: int = 1200, height: int = 800) -> bytes:
    """A real PNG with a gradient and shapes, so the screenshot shows something recognisable."""
    image = Image.new("RGB", (width, height))
    pixels = image.load()
    assert pixels is not None
    for x in range(width):
        for y in range(0, height, 4):
            colour = (x * 255 // width, y * 255 // height, 160)
            for dy in range(4):
                if y + dy < height:
                    pixels[x, y + dy] = colour
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def open_demo(page: object, live: LiveServer) -> None:
    page.goto(live.url + "/")  # type: ignore[attr-defined]
    limits = page.locator("#limits")  # type: ignore[attr-defined]
    playwright_api.expect(limits).to_contain_text("Images: image/jpeg")
    playwright_api.expect(limits).to_contain_text("up to 10.0 MiB")


def suffix(live: LiveServer) -> str:
    """Screenshots of the Azure run are named apart."""
    return "-azure" if live.backend == "azure" else ""


def signed_get(href: str, backend: str) -> bool:
    """A short-lived signed GET of 900 s: SigV4's query, or an Azure SAS (read of one blob until `se`)."""
    if backend == "azure":
        query = parse_qs(urlsplit(href).query)
        expires = datetime.fromisoformat(query["se"][0].replace("Z", "+00:00"))
        in_900_s = timedelta(seconds=800) < expires - datetime.now(UTC) <= timedelta(seconds=900)
        return query["sp"] == ["r"] and query["sr"] == ["b"] and "sig" in query and in_900_s
    return "X-Amz-Signature=" in href and "X-Amz-Expires=900" in href


@BOTH_BACKENDS
def test_upload_image_and_pdf_then_see_them_listed(page: object, live_server: LiveServer) -> None:
    expect = playwright_api.expect
    png, pdf = photo_png(), files.pdf()
    frames: list[str] = []
    page.on(  # type: ignore[attr-defined]
        "websocket", lambda ws: ws.on("framereceived", lambda frame: frames.append(str(frame)))
    )
    open_demo(page, live_server)
    page.set_input_files(  # type: ignore[attr-defined]
        "#file-input",
        [
            {"name": "sunset 1200x800.png", "mimeType": "image/png", "buffer": png},
            {"name": "Résumé 2026.pdf", "mimeType": "application/pdf", "buffer": pdf},
        ],
    )
    queue = page.locator("#queue li")  # type: ignore[attr-defined]
    expect(queue).to_have_count(2)
    expect(queue.filter(has_text="sunset")).to_contain_text("Saved as photos record")
    expect(queue.filter(has_text="Résumé")).to_contain_text("Saved as documents record")
    expect(queue.locator("progress").first).to_have_attribute("value", "100")

    photo = page.locator("#photos > li").first  # type: ignore[attr-defined]
    original = photo.locator("img.original")
    expect(original).to_be_visible()
    page.wait_for_function(  # type: ignore[attr-defined]
        "img => img.complete && img.naturalWidth > 0", arg=original.element_handle()
    )
    size = original.evaluate("img => [img.naturalWidth, img.naturalHeight]")
    assert size == [1200, 800]
    expect(photo.locator("figcaption")).to_contain_text("sunset 1200x800.png")

    # Every version says its state in words (pending until the worker has built it). Read in one go:
    # the subscription may re-render an item between two separate reads.
    versions = photo.locator(".versions li")
    expect(versions).to_have_count(3)
    shown = versions.evaluate_all("items => items.map(i => [i.dataset.status, i.querySelector('.badge').textContent])")
    words = {"pending": "pending: being generated", "ready": "ready", "failed": "failed"}
    assert len(shown) == 3 and all(words[status] in text for status, text in shown), shown

    # The private PDF: its link is signed; following it downloads the same bytes under the original name.
    link = page.locator("#documents a.download").first  # type: ignore[attr-defined]
    expect(link).to_have_text("Download Résumé 2026.pdf")
    href = str(link.get_attribute("href"))
    assert signed_get(href, live_server.backend), href
    with page.expect_download() as download_info:  # type: ignore[attr-defined]
        link.click()
    download = download_info.value
    assert download.suggested_filename == "Résumé 2026.pdf"
    assert Path(download.path()).read_bytes() == pdf

    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"demo-page{suffix(live_server)}.png"), full_page=True)  # type: ignore[attr-defined]
    assert page.problems == []  # type: ignore[attr-defined]

    # The thumb version appears once the background worker has built it, pushed through the subscription.
    thumb = photo.locator('.versions li[data-version="thumb"]')
    try:
        expect(thumb).to_have_attribute("data-status", "ready", timeout=THUMB_TIMEOUT_MS)
    except AssertionError:
        state = thumb.locator(".badge").inner_text()
        pytest.fail(
            f"the thumb version still reads {state!r} after {THUMB_TIMEOUT_MS // 1000} s: "
            "is the version worker running in `python -m app.run`?"
        )
    thumb_img = thumb.locator("img[data-version-img=thumb]")
    page.wait_for_function(  # type: ignore[attr-defined]
        "img => img.complete && img.naturalWidth > 0", arg=thumb_img.element_handle()
    )
    assert thumb_img.evaluate("img => [img.naturalWidth, img.naturalHeight]") == [200, 200]
    expect(thumb.locator(".badge")).to_contain_text("ready")
    expect(page.locator("#photos")).to_have_attribute("data-updates", "subscription")  # type: ignore[attr-defined]
    pushed = [json.loads(f) for f in frames if '"next"' in f]
    assert any(
        v["name"] == "thumb" and v["status"] == "ready"
        for f in pushed
        for v in f["payload"]["data"]["property_upload_changed"]["version_details"]
    ), frames
    page.screenshot(path=str(ARTIFACTS / f"demo-page-versions{suffix(live_server)}.png"), full_page=True)  # type: ignore[attr-defined]


def test_without_websocket_the_page_polls_for_versions(page: object, live_server: LiveServer) -> None:
    expect = playwright_api.expect
    page.add_init_script("delete window.WebSocket")  # type: ignore[attr-defined]
    open_demo(page, live_server)
    page.set_input_files(  # type: ignore[attr-defined]
        "#file-input", [{"name": "polled.png", "mimeType": "image/png", "buffer": photo_png(400, 300)}]
    )
    expect(page.locator("#queue li").filter(has_text="polled.png")).to_contain_text("Saved as photos record")  # type: ignore[attr-defined]
    photo = page.locator("#photos > li").filter(has_text="polled.png")  # type: ignore[attr-defined]
    expect(page.locator("#photos")).to_have_attribute("data-updates", "polling")  # type: ignore[attr-defined]
    thumb = photo.locator('.versions li[data-version="thumb"]')
    expect(thumb).to_have_attribute("data-status", "ready", timeout=THUMB_TIMEOUT_MS)
    assert page.problems == []  # type: ignore[attr-defined]


@BOTH_BACKENDS
def test_errors_are_shown_in_words_next_to_the_file(page: object, live_server: LiveServer) -> None:
    expect = playwright_api.expect
    open_demo(page, live_server)
    page.set_input_files(  # type: ignore[attr-defined]
        "#file-input",
        [
            {"name": "huge.png", "mimeType": "image/png", "buffer": b"\x89PNG" + b"\0" * (10 * 1024 * 1024 + 1)},
            {"name": "big.pdf", "mimeType": "application/pdf", "buffer": b"%PDF" + b"\0" * (6 * 1024 * 1024)},
            {"name": "notes.txt", "mimeType": "text/plain", "buffer": b"hello " * 400},
            # Passes the page's checks, then the server reads the bytes: HTML is not a PNG.
            {"name": "fake.png", "mimeType": "image/png", "buffer": files.HTML},
        ],
    )
    queue = page.locator("#queue li")  # type: ignore[attr-defined]
    huge = queue.filter(has_text="huge.png")
    expect(huge).to_contain_text("Not uploaded: This file is too large (10485765 bytes); the limit is 10485760 bytes.")
    expect(huge.locator("progress")).to_be_hidden()
    expect(huge).to_contain_text("(UPLOAD_TOO_LARGE)")
    expect(huge).to_have_class(re.compile(r"\berror\b"))
    expect(queue.filter(has_text="big.pdf")).to_contain_text("This file is too large (6.0 MiB); the limit is 5.0 MiB.")
    notes = queue.filter(has_text="notes.txt")
    expect(notes).to_contain_text("This file type (text/plain) is not accepted. Accepted types: image/jpeg")
    expect(notes).to_contain_text("(CONTENT_TYPE_NOT_ALLOWED)")
    fake = queue.filter(has_text="fake.png")
    expect(fake).to_contain_text("Not uploaded:", timeout=15_000)
    expect(fake).to_contain_text("(CONTENT_MISMATCH)")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"demo-page-errors{suffix(live_server)}.png"), full_page=True)  # type: ignore[attr-defined]


def test_graphiql_page_opens_on_the_upload_example(page: object, live_server: LiveServer) -> None:
    """The IDE page and its default document; the document's operations run against the API."""
    response = page.goto(live_server.url + "/graphql")  # type: ignore[attr-defined]
    assert response is not None and response.status == 200
    assert "graphiql" in page.title().lower()  # type: ignore[attr-defined]
    example = page.evaluate("() => EXAMPLE_QUERY")  # type: ignore[attr-defined]
    assert example == EXAMPLE_DOCUMENT
    # Run the example's read operations from the page, as the IDE's ▶ button would.
    for operation in ("Tables", "Photos"):
        body = page.evaluate(  # type: ignore[attr-defined]
            """async ([doc, op]) => (await fetch("/graphql", {method: "POST",
                 headers: {"Content-Type": "application/json"},
                 body: JSON.stringify({query: doc, operationName: op})})).json()""",
            [example, operation],
        )
        assert "errors" not in body, body
    assert body["data"]["records"]["total_entries"] >= 0


def test_graphiql_editor_runs_the_example(page: object, live_server: LiveServer) -> None:
    """The editor itself starts with no internet access (its assets come from our /static) and runs
    the example's first operation from the ▶ button."""
    expect = playwright_api.expect
    failed: list[str] = []
    foreign: list[str] = []
    page.on("requestfailed", lambda request: failed.append(request.url))  # type: ignore[attr-defined]
    page.on(  # type: ignore[attr-defined]
        "request", lambda request: None if request.url.startswith(live_server.url) else foreign.append(request.url)
    )
    page.goto(live_server.url + "/graphql")  # type: ignore[attr-defined]
    editor = page.locator(".graphiql-query-editor .CodeMirror").first  # type: ignore[attr-defined]
    editor.wait_for()
    assert page.evaluate("() => typeof window.GraphiQL") == "function"  # type: ignore[attr-defined]
    # The editor holds our example, not Strawberry's welcome text.
    text = page.evaluate("() => document.querySelector('.graphiql-query-editor .CodeMirror').CodeMirror.getValue()")  # type: ignore[attr-defined]
    assert text == EXAMPLE_DOCUMENT
    page.locator("button.graphiql-execute-button").click()  # type: ignore[attr-defined]
    # The document holds several operations, so GraphiQL asks which one to run.
    page.get_by_role("menuitem", name="Tables").click()  # type: ignore[attr-defined]
    response = page.locator(".graphiql-response")  # type: ignore[attr-defined]
    expect(response).to_contain_text('"tables"')
    expect(response).to_contain_text('"photos"')
    # The schema came through introspection: the documentation explorer lists the root types.
    page.locator("button[aria-label='Show Documentation Explorer']").click()  # type: ignore[attr-defined]
    expect(page.locator(".graphiql-doc-explorer")).to_contain_text("Query")  # type: ignore[attr-defined]
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "graphiql.png"))  # type: ignore[attr-defined]
    assert not failed, failed
    assert not foreign, f"GraphiQL reached beyond the server: {foreign}"


def test_drop_zone_works_from_the_keyboard_and_by_dropping(page: object, live_server: LiveServer) -> None:
    expect = playwright_api.expect
    open_demo(page, live_server)
    # Tab from the top: the GraphiQL link, then the file picker, whose focus ring shows on the zone.
    page.keyboard.press("Tab")  # type: ignore[attr-defined]
    page.keyboard.press("Tab")  # type: ignore[attr-defined]
    assert page.evaluate("() => document.activeElement.id") == "file-input"  # type: ignore[attr-defined]
    outline = page.eval_on_selector("#dropzone", "z => getComputedStyle(z).outlineStyle")  # type: ignore[attr-defined]
    assert outline == "solid"
    # The focused control is the native file input, so Space/Enter open the browser's own chooser;
    # headless Chromium does not always raise that dialog for a synthetic key press (it timed out
    # once in CI), so the file is handed to the focused input directly.
    page.set_input_files(  # type: ignore[attr-defined]
        "#file-input", files=[{"name": "typed.txt", "mimeType": "text/plain", "buffer": b"x" * 2048}]
    )
    expect(page.locator("#queue li").filter(has_text="typed.txt")).to_contain_text("(CONTENT_TYPE_NOT_ALLOWED)")  # type: ignore[attr-defined]

    # A file dropped on the zone goes the same way.
    page.evaluate(  # type: ignore[attr-defined]
        """() => {
          const data = new DataTransfer();
          const svg = "<svg xmlns='http://www.w3.org/2000/svg'/>";
          data.items.add(new File([svg], "dropped.svg", {type: "image/svg+xml"}));
          document.getElementById("dropzone").dispatchEvent(new DragEvent("drop", {dataTransfer: data, bubbles: true}));
        }"""
    )
    dropped = page.locator("#queue li").filter(has_text="dropped.svg")  # type: ignore[attr-defined]
    expect(dropped).to_contain_text("This file type (image/svg+xml) is not accepted.")


# -- the docs' plain fetch recipes (docs/frontend.md), run as they are written ----------------------
RECIPES_HTML = (
    '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>fetch recipes</title></head><body></body></html>'
)

# Calls one recipe function with a File made of the given bytes; returns what it resolved to, or the
# message and code of what it threw.
CALL_RECIPE = """async ([fn, name, type, b64]) => {
  const file = new File([Uint8Array.from(atob(b64), (c) => c.charCodeAt(0))], name, { type });
  try { return { data: await window[fn](file) }; }
  catch (error) { return { error: error.message, code: error.code ?? null }; }
}"""


def open_fetch_recipes(page: object, live: LiveServer) -> None:
    """A blank document on the server's origin (as tests/test_uppy_browser.py opens one, so Chromium puts
    it in the loopback address space like the storage it sends to) holding both fetch recipes."""
    page.route(live.url + "/favicon.ico", lambda route: route.fulfill(status=204))  # type: ignore[attr-defined]
    page.goto(live.url + "/healthz")  # type: ignore[attr-defined]
    page.set_content(RECIPES_HTML)  # type: ignore[attr-defined]
    page.add_script_tag(content=recipe("fetch-post"))  # type: ignore[attr-defined]
    page.add_script_tag(content=recipe("fetch-put"))  # type: ignore[attr-defined]


def call_recipe(page: object, fn: str, name: str, content_type: str, data: bytes) -> dict[str, Any]:
    result: dict[str, Any] = page.evaluate(  # type: ignore[attr-defined]
        CALL_RECIPE, [fn, name, content_type, base64.b64encode(data).decode()]
    )
    return result


def test_fetch_post_recipe_uploads_saves_and_reports_our_codes(page: object, live_server: LiveServer) -> None:
    open_fetch_recipes(page, live_server)
    png = files.png()
    saved = call_recipe(page, "uploadPhoto", "cat.png", "image/png", png)
    assert "error" not in saved, saved
    record = saved["data"]["record_create"]
    assert record["id"]
    url = record["property_upload"]["url"]
    assert url.endswith("/cat.png")
    assert httpx.get(url, timeout=10).content == png  # the bytes the browser sent, served by storage

    html_as_png = call_recipe(page, "uploadPhoto", "fake.png", "image/png", files.HTML)
    assert html_as_png["code"] == "CONTENT_MISMATCH", html_as_png
    refused = call_recipe(page, "uploadPhoto", "notes.txt", "text/plain", b"x" * 2048)
    assert refused["code"] == "CONTENT_TYPE_NOT_ALLOWED", refused


def scanned_resume(live: LiveServer, record_id: str, within: float = 30) -> dict[str, Any]:
    query = 'query($id: ID!) { record(id: $id) { property_upload(name: "resume") { url scan_status } } }'
    deadline = time.monotonic() + within
    while True:
        body = httpx.post(live.url + "/graphql", json={"query": query, "variables": {"id": record_id}}).json()
        upload: dict[str, Any] = body["data"]["record"]["property_upload"]
        if upload["scan_status"] != "pending" and (upload["url"] or upload["scan_status"] != "clean"):
            return upload
        assert time.monotonic() < deadline, upload
        time.sleep(0.1)


def test_fetch_put_recipe_uploads_a_private_document_with_its_checksum(page: object, live_server: LiveServer) -> None:
    open_fetch_recipes(page, live_server)
    pdf = files.pdf()
    saved = call_recipe(page, "uploadDocument", "cv.pdf", "application/pdf", pdf)
    assert "error" not in saved, saved
    record = saved["data"]["record_create"]
    upload = record["property_upload"]
    assert (upload["size"], upload["content_type"]) == (len(pdf), "application/pdf")
    # Résumés are scanned before they are served: no URL until the worker beside the API found it clean.
    assert (upload["url"], upload["scan_status"]) == (None, "pending")
    upload = scanned_resume(live_server, record["id"])
    assert upload["scan_status"] == "clean"
    # A private file: the URL is a signed GET, and it serves the very bytes as an attachment.
    assert "X-Amz-Signature=" in upload["url"]
    got = httpx.get(upload["url"], timeout=10)
    assert got.content == pdf
    assert got.headers["content-disposition"].startswith("attachment")

    refused = call_recipe(page, "uploadDocument", "notes.txt", "text/plain", b"x" * 2048)
    assert refused["code"] == "CONTENT_TYPE_NOT_ALLOWED", refused
