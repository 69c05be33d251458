"""Real Uppy on Azure (Azurite) in headless Chromium: the docs' multipart recipe (docs/frontend.md) and
the `uploadPartBytes` docs/azure.md adds for Azure, both as written, against `make run` with
STORAGE_BACKEND=azure. Put Block answers no ETag: the parts complete with empty ones."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from app.settings import ROOT
from tests.browser_support import ARTIFACTS, browser, page
from tests.large import MIB, SAVE, schema_dir
from tests.live import LiveServer, start_live_server, stop_live_server
from tests.recipes import recipe
from tests.test_uppy_browser import ADD_GENERATED, UPLOAD, docs_multipart_recipe, generated, gql, open_page

pytestmark = pytest.mark.browser

__all__ = ["browser", "page"]  # fixtures, imported for pytest


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """`make run` on Azurite with the docs' `videos` table beside the shipped ones."""
    tmp = tmp_path_factory.mktemp("uppy-azure")
    server = start_live_server(tmp, SCHEMA_DIR=str(schema_dir(tmp)), STORAGE_BACKEND="azure")
    yield server
    stop_live_server(server)


def azure_recipe() -> str:
    return "(() => {\n" + recipe("uppy-azure", page=ROOT / "docs" / "azure.md") + "\n})();"


def test_docs_multipart_recipe_on_azure_uploads_blocks_with_real_uppy(page: Any, live_server: LiveServer) -> None:
    size = 11 * MIB + 123  # three blocks: 5 MiB, 5 MiB, the rest
    puts: list[tuple[str, int]] = []

    def record_put(route: Any) -> None:  # what Uppy sends to storage; the request goes on unchanged
        if route.request.method == "PUT":
            puts.append((route.request.url, len(route.request.post_data_buffer or b"")))
        route.continue_()

    page.route(live_server.storage_url + "/**", record_put)
    open_page(page, live_server, docs_multipart_recipe() + "\n" + azure_recipe())
    page.evaluate(ADD_GENERATED, ["holiday film.mp4", "video/mp4", size])

    result = page.evaluate(UPLOAD, 60)
    assert result["failed"] == [], (result["failed"], page.problems)
    [done] = result["successful"]
    url = done["response"]["uploadURL"]

    # Each block went straight to Azure with its own Put Block URL.
    assert sorted(length for _, length in puts) == sorted([5 * MIB, 5 * MIB, size - 10 * MIB])
    assert all("comp=block" in put_url for put_url, _ in puts)
    ids = sorted(m[1] for put_url, _ in puts if (m := re.search(r"[?&]blockid=([^&]+)", put_url)))
    assert ids == ["MDAwMDAx", "MDAwMDAy", "MDAwMDAz"]  # base64 of 000001, 000002, 000003

    props = [{"name": "title", "value": "Holiday"}, {"name": "clip", "value": url}]
    saved = gql(live_server, SAVE, {"table": "videos", "props": props, "prop": "clip"})
    assert "errors" not in saved, saved
    upload = saved["data"]["record_create"]["upload"]
    assert (upload["size"], upload["content_type"], upload["file_name"]) == (size, "video/mp4", "holiday film.mp4")
    stored = httpx.get(upload["url"], timeout=60)
    assert stored.status_code == 200 and stored.content == generated(size)

    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "uppy-multipart-recipe-azure.png"), full_page=True)
    assert page.problems == []
