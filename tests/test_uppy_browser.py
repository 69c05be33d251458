"""Real Uppy in headless Chromium: the docs' Uppy recipes, taken from docs/frontend.md as they are written, run
with Uppy's prebuilt browser bundle (tests/js/node_modules/uppy, pinned in tests/js/package.json)
against `python -m app.run`. The page is a blank document on the server's origin, written and filled
by Playwright (the bundle is injected from node_modules), so no server code exists for this test."""

from __future__ import annotations

import base64
import json
import re
from typing import Any

import httpx
import pytest

from app.settings import ROOT
from tests import files
from tests.browser_support import ARTIFACTS, browser, page, playwright_api
from tests.gql import IMAGE_PRESIGN, RECORD, RECORDS
from tests.large import MIB, SAVE, schema_dir
from tests.live import LiveServer, live_server, start_live_server, stop_live_server
from tests.recipes import recipe, section

pytestmark = pytest.mark.browser

__all__ = ["browser", "live_server", "page"]  # fixtures, imported for pytest

UPPY_DIST = ROOT / "tests" / "js" / "node_modules" / "uppy" / "dist"
# What tests/js/package-lock.json pins: the `uppy` 5.2.4 bundle carries these two.
UPPY_CORE_VERSION, UPPY_AWS_S3_VERSION = "5.2.0", "5.1.0"
BLANK_HTML = (
    '<!doctype html><html lang="en"><head><meta charset="utf-8">'
    "<title>Uppy and the docs recipe</title></head>"
    '<body><div id="dashboard"></div></body></html>'
)
RECIPE_IMPORTS = ['import Uppy from "@uppy/core";', 'import AwsS3 from "@uppy/aws-s3";']
LIMIT = 10240 * 1024  # photos.image: content_length.lte is 10240 KiB


def docs_uppy_recipe() -> str:
    """The js block of the docs' "Uppy: form POST" recipe, its two imports swapped for the bundle's
    globals (the page says that is all that changes with the bundle)."""
    lines = recipe("uppy-post").splitlines()
    assert [line for line in lines if line.startswith("import ")] == RECIPE_IMPORTS
    assert "const { Uppy, AwsS3 } = window.Uppy;" in section("uppy-post")
    body = "\n".join(line for line in lines if not line.startswith("import "))
    return "(() => {\nconst { Uppy, AwsS3 } = window.Uppy;\n" + body + "\nwindow.uppy = uppy;\n})();"


def docs_multipart_recipe() -> str:
    """The js block of the docs' "Uppy: multipart" recipe, which configures an existing `uppy`: run
    with the bundle's globals and a bare `new Uppy()` in front of it."""
    lines = recipe("uppy-multipart").splitlines()
    assert [line for line in lines if line.startswith("import ")] == ['import AwsS3 from "@uppy/aws-s3";']
    body = "\n".join(line for line in lines if not line.startswith("import "))
    head = "(() => {\nconst { Uppy, AwsS3 } = window.Uppy;\nconst uppy = new Uppy();\n"
    return head + body + "\nwindow.uppy = uppy;\n})();"


def open_page(page: Any, live: LiveServer, script: str) -> None:
    bundle = UPPY_DIST / "uppy.min.js"
    if not bundle.exists():
        pytest.fail(f"{bundle} is missing: run `make test-deps` (npm ci in tests/js)")
    # A document the server itself answered (its /healthz), so Chromium places the page in the loopback
    # address space like the storage it posts to; a page Playwright fulfilled would be "public" and
    # Local Network Access would block the POST. Then the document is replaced with a blank one.
    # Chromium asks the server for /favicon.ico, which it does not have: answer that from here.
    page.route(live.url + "/favicon.ico", lambda route: route.fulfill(status=204))
    page.goto(live.url + "/healthz")
    page.set_content(BLANK_HTML)
    page.add_style_tag(path=str(UPPY_DIST / "uppy.min.css"))
    page.add_script_tag(path=str(bundle))
    assert page.evaluate("() => [Uppy.Uppy.VERSION, Uppy.AwsS3.VERSION]") == [UPPY_CORE_VERSION, UPPY_AWS_S3_VERSION]
    page.add_script_tag(content=script)
    assert page.evaluate("() => window.uppy instanceof Uppy.Uppy"), page.problems
    # Not part of the recipe: Uppy's own file list, so the screenshot shows what Uppy thinks happened.
    page.evaluate(
        """() => uppy.use(Uppy.Dashboard, {inline: true, target: "#dashboard", height: 520,
             hideUploadButton: true, proudlyDisplayPoweredByUppy: false})"""
    )


def open_uppy(page: Any, live: LiveServer) -> None:
    open_page(page, live, docs_uppy_recipe())


ADD_FILE = """([name, type, b64, padding]) => {
  const head = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  const data = new Blob([head, new Uint8Array(padding)], { type });
  return uppy.addFile({ name, type, data, source: "test" });
}"""

UPLOAD = """async (within) => {
  const seconds = within ?? 20;  // Playwright passes null when the test gives no argument
  const late = new Promise((_, reject) => setTimeout(
    () => reject(new Error(`uppy.upload() not done within ${seconds} s: ${JSON.stringify(uppy.getState().info)}`)),
    seconds * 1000));
  const { successful, failed } = await Promise.race([uppy.upload(), late]);
  const plain = (f) => ({ name: f.name, meta: f.meta, error: f.error, response: f.response });
  return { successful: successful.map(plain), failed: failed.map(plain) };
}"""


def add_file(page: Any, name: str, content_type: str, data: bytes, padding: int = 0) -> str:
    """Adds `data` followed by `padding` zero bytes as a Blob, the way uppy.addFile documents it."""
    return str(page.evaluate(ADD_FILE, [name, content_type, base64.b64encode(data).decode(), padding]))


def gql(live: LiveServer, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = httpx.post(
        live.url + "/graphql", json={"query": query, "variables": variables}, timeout=30
    ).json()
    return body


def test_docs_recipe_uploads_and_saves_with_real_uppy(page: Any, live_server: LiveServer) -> None:
    png = files.png(320, 240)
    posts: list[bytes | None] = []

    def record_post(route: Any) -> None:  # what Uppy sends to storage; the request goes on unchanged
        if route.request.method == "POST":
            posts.append(route.request.post_data_buffer)
        route.continue_()

    page.route(live_server.storage_url + "/**", record_post)
    open_uppy(page, live_server)
    add_file(page, "sunset 320x240.png", "image/png", png)

    result = page.evaluate(UPLOAD)
    assert result["failed"] == [], (result["failed"], page.problems)
    [done] = result["successful"]
    record_id = done["meta"]["record_id"]
    assert record_id, done

    # What Uppy really sent to storage: every presigned field in order, then the Blob as "file", last.
    [form] = posts
    assert form is not None
    presigned = gql(
        live_server, IMAGE_PRESIGN, {"table": "photos", "prop": "image", "type": "image/png", "name": "x.png"}
    )["data"]["image_presign_url"]
    names = [name.decode() for name in re.findall(rb'; name="([^"]+)"', form)]
    assert names == [*presigned["upload_url_payload"], "file"]
    assert b'; name="file"; filename="blob"\r\nContent-Type: image/png\r\n\r\n' + png in form

    record = gql(live_server, RECORD, {"id": record_id, "prop": "image"})["data"]["record"]
    assert record["properties"]["caption"] == "sunset 320x240.png"
    upload = record["upload"]
    assert upload["file_name"] == "sunset 320x240.png"
    assert (upload["size"], upload["content_type"]) == (len(png), "image/png")
    assert (upload["width"], upload["height"]) == (320, 240)
    assert upload["url"].startswith(live_server.storage_url + "/") and upload["url"].endswith("/sunset%20320x240.png")
    stored = httpx.get(upload["url"], timeout=30)
    assert stored.status_code == 200 and stored.content == png
    assert stored.headers["content-type"] == "image/png"

    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "uppy-recipe.png"), full_page=True)
    assert page.problems == []


def test_docs_recipe_failures_carry_our_codes_in_uppy(page: Any, live_server: LiveServer) -> None:
    open_uppy(page, live_server)
    # Uppy's own restriction (image/*) refuses before any request.
    with pytest.raises(playwright_api.Error, match=r"You can only upload: image/\*"):
        add_file(page, "notes.txt", "text/plain", b"hello " * 400)

    png = files.png()
    add_file(page, "drawing.svg", "image/svg+xml", files.padded(b"<svg xmlns='http://www.w3.org/2000/svg'/>"))
    add_file(page, "huge.png", "image/png", png, padding=LIMIT + 1 - len(png))
    add_file(page, "fake.png", "image/png", files.HTML)

    result = page.evaluate(UPLOAD)
    assert result["successful"] == []
    errors = {f["name"]: f["error"] for f in result["failed"]}
    assert set(errors) == {"drawing.svg", "huge.png", "fake.png"}

    # Refused at presign: Uppy shows the server's own message, after its code.
    refused = gql(
        live_server, IMAGE_PRESIGN, {"table": "photos", "prop": "image", "type": "image/svg+xml", "name": "drawing.svg"}
    )["errors"][0]
    assert refused["extensions"]["code"] == "CONTENT_TYPE_NOT_ALLOWED"
    assert errors["drawing.svg"] == f"CONTENT_TYPE_NOT_ALLOWED: {refused['message']}"
    assert errors["huge.png"] == f"UPLOAD_TOO_LARGE: huge.png is {LIMIT + 1} bytes; the limit is {LIMIT} bytes"
    # Stored, then refused by record_create, which reads the bytes: HTML is not a PNG.
    assert errors["fake.png"].startswith("CONTENT_MISMATCH: "), errors["fake.png"]

    saved = gql(live_server, RECORDS, {"table": "photos", "prop": "image", "per_page": 100})["data"]["records"]
    assert not {r["properties"].get("caption") for r in saved["results"]} & set(errors)

    # For the screenshot: the errors as Uppy holds them (its Dashboard shows them only on hover).
    page.evaluate(
        """() => { const list = document.body.appendChild(document.createElement("ul"));
             for (const f of uppy.getFiles()) list.appendChild(document.createElement("li")).textContent =
               `${f.name}: ${f.error}`; }"""
    )
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "uppy-recipe-errors.png"), full_page=True)
    # Uppy logs each failure once with console.error ("[Uppy] [time] CODE: ..."); nothing else went wrong.
    logged = [re.sub(r"^console error: \[Uppy\] \[[\d:]+\] ", "", p) for p in page.problems]
    assert sorted(logged) == sorted(errors.values()), page.problems


# A file of a few parts, made in the page (sending 11 MiB through Playwright would dwarf the upload).
ADD_GENERATED = """([name, type, size]) => {
  const data = new Uint8Array(size);
  for (let i = 0; i < size; i++) data[i] = (i * 31 + (i >> 9)) & 255;
  return uppy.addFile({ name, type, data: new Blob([data], { type }), source: "test" });
}"""


def generated(size: int) -> bytes:
    return bytes((i * 31 + (i >> 9)) & 255 for i in range(size))


@pytest.fixture(scope="module")
def videos_server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """`make run` with the docs' `videos` table (tests/large.py declares the same one) beside the shipped ones."""
    tmp = tmp_path_factory.mktemp("videos")
    server = start_live_server(tmp, SCHEMA_DIR=str(schema_dir(tmp)))
    yield server
    stop_live_server(server)


def test_docs_multipart_recipe_uploads_in_parts_with_real_uppy(page: Any, videos_server: LiveServer) -> None:
    size = 11 * MIB + 123  # three parts: 5 MiB, 5 MiB, the rest
    puts: list[tuple[str, int]] = []

    def record_put(route: Any) -> None:  # what Uppy sends to storage; the request goes on unchanged
        if route.request.method == "PUT":
            puts.append((route.request.url, len(route.request.post_data_buffer or b"")))
        route.continue_()

    page.route(videos_server.storage_url + "/**", record_put)
    open_page(page, videos_server, docs_multipart_recipe())
    page.evaluate(ADD_GENERATED, ["holiday film.mp4", "video/mp4", size])

    result = page.evaluate(UPLOAD, 60)
    assert result["failed"] == [], (result["failed"], page.problems)
    [done] = result["successful"]
    url = done["response"]["uploadURL"]  # completeMultipartUpload's `location`: our `url`

    # Each part went straight to storage with its own signed URL, in the size the server planned.
    assert sorted(length for _, length in puts) == sorted([5 * MIB, 5 * MIB, size - 10 * MIB])
    numbers = [m[1] for put_url, _ in puts if (m := re.search(r"[?&]partNumber=(\d+)", put_url))]
    assert sorted(numbers) == ["1", "2", "3"]

    # The docs' next step: save the URL into the record, which verifies the object.
    props = [{"name": "title", "value": "Holiday"}, {"name": "clip", "value": url}]
    saved = gql(videos_server, SAVE, {"table": "videos", "props": props, "prop": "clip"})
    assert "errors" not in saved, saved
    upload = saved["data"]["record_create"]["upload"]
    assert (upload["size"], upload["content_type"], upload["file_name"]) == (size, "video/mp4", "holiday film.mp4")
    stored = httpx.get(upload["url"], timeout=60)
    assert stored.status_code == 200 and stored.content == generated(size)

    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "uppy-multipart-recipe.png"), full_page=True)
    assert page.problems == []


# Cancels everything as soon as the first bytes of a part are on their way; Uppy then aborts the
# multipart upload through the recipe's abortMultipartUpload.
CANCEL_MIDWAY = """async () => {
  const started = new Promise((resolve) => {
    uppy.on("upload-progress", (file, progress) => {
      if (progress.bytesUploaded > 0 && !window.cancelled) { window.cancelled = true; uppy.cancelAll(); resolve(); }
    });
  });
  uppy.upload().catch(() => {});  // cancelAll settles it either way
  await started;
}"""


def test_docs_multipart_recipe_cancel_aborts_the_upload(page: Any, videos_server: LiveServer) -> None:
    answers: dict[str, list[Any]] = {"multipart_upload_create": [], "multipart_upload_abort": []}

    def record_answer(response: Any) -> None:  # the recipe's own GraphQL calls, as the server answered them
        if response.url != videos_server.url + "/graphql":
            return
        sent = json.loads(response.request.post_data or "{}")
        for name, seen in answers.items():
            if name in sent.get("query", ""):
                seen.append((sent["variables"], response.json()))

    page.on("response", record_answer)
    open_page(page, videos_server, docs_multipart_recipe())
    page.evaluate(ADD_GENERATED, ["abandoned.mp4", "video/mp4", 11 * MIB])
    page.evaluate(CANCEL_MIDWAY)
    for _ in range(100):  # Uppy aborts once cancelAll has stopped the parts; wait for the server's answer
        if answers["multipart_upload_abort"]:
            break
        page.wait_for_timeout(100)
    [(_, created)] = answers["multipart_upload_create"]
    key = created["data"]["multipart_upload_create"]["key"]
    assert answers["multipart_upload_abort"] == [
        (
            {"u": created["data"]["multipart_upload_create"]["upload_id"], "k": key},
            {"data": {"multipart_upload_abort": True}},
        )
    ], page.problems

    # Storage holds neither the open upload nor an object: nothing left for the sweep to find.
    s3 = videos_server.s3()
    assert [u["Key"] for u in s3.list_multipart_uploads(Bucket="uploads").get("Uploads", [])] == []
    assert s3.list_objects_v2(Bucket="uploads", Prefix=key).get("KeyCount") == 0
    # And the key can no longer be saved: the server knows the upload was abandoned.
    props = [{"name": "clip", "value": key}]
    refused = gql(videos_server, SAVE, {"table": "videos", "props": props, "prop": "clip"})
    assert refused["errors"][0]["extensions"]["code"] == "UPLOAD_EXPIRED", refused
