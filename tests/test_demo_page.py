"""The demo page's files and GraphiQL's example over ASGI, and the bucket CORS origins of `make run`
(the browser itself is in test_browser.py)."""

from __future__ import annotations

import json
import re

from app.graphiql import ASSETS_URL, EXAMPLE_DOCUMENT, graphiql_html
from app.main import STATIC_DIR
from app.run import page_origins
from app.settings import Settings
from tests.conftest import Harness
from tools.vendor_graphiql import matches, page_assets


async def test_demo_page_and_its_assets_are_served(h: Harness) -> None:
    page = await h.http.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert '<script type="module" src="/static/app.js">' in page.text
    assert 'aria-live="polite"' in page.text and '<label for="file-input">' in page.text
    script = await h.http.get("/static/app.js")
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]
    assert (await h.http.get("/static/style.css")).headers["content-type"].startswith("text/css")
    assert (await h.http.get("/static/nope.js")).status_code == 404


async def test_graphiql_opens_on_the_upload_example(h: Harness) -> None:
    ide = await h.http.get("/graphql", headers={"Accept": "text/html"})
    assert ide.status_code == 200
    assert "const EXAMPLE_QUERY = " in ide.text and "image_presign_url" in ide.text
    assert ide.text == graphiql_html()
    # Each read operation of the example runs as it stands.
    for operation in ("Tables", "Photos"):
        response = await h.http.post("/graphql", json={"query": EXAMPLE_DOCUMENT, "operationName": operation})
        body = response.json()
        assert "errors" not in body, body


def test_bucket_cors_allows_the_page_origin() -> None:
    assert page_origins(Settings(host="127.0.0.1", port=8000)) == ("http://127.0.0.1:8000", "http://localhost:8000")
    assert page_origins(Settings(host="0.0.0.0", port=9)) == (
        "http://0.0.0.0:9",
        "http://127.0.0.1:9",
        "http://localhost:9",
    )
    assert page_origins(Settings(host="uploads.internal", port=80)) == ("http://uploads.internal:80",)


async def test_graphiql_assets_are_served_from_our_own_origin(h: Harness) -> None:
    """Strawberry's page names unpkg.com; ours names the same files (same integrity) under /static."""
    html = graphiql_html()
    assert "unpkg.com" not in html
    assert not re.search(r'(?:src|href)="(?:https?:)?//', html), "the GraphiQL page loads something from elsewhere"
    upstream = page_assets()
    assert len(upstream) == 7
    for asset in upstream:
        url = ASSETS_URL + asset.path
        # Same path, same integrity attribute: the browser refuses the file unless its bytes are unpkg's.
        assert f'"{url}"\n      integrity="{asset.integrity}"' in html, asset
        response = await h.http.get(url, headers={"Accept-Encoding": "identity"})
        assert response.status_code == 200, url
        assert matches(response.content, asset.integrity), f"{url} differs from what the page's integrity names"
        kind = "javascript" if asset.file.endswith(".js") else "text/css"
        assert kind in response.headers["content-type"]
    big = await h.http.get(ASSETS_URL + "graphiql@3.8.3/graphiql.min.js", headers={"Accept-Encoding": "gzip"})
    assert big.headers["content-encoding"] == "gzip"
    assert big.num_bytes_downloaded < 1_500_000 < len(big.content)  # httpx decoded it


def test_vendored_graphiql_matches_the_installed_strawberry() -> None:
    """After a Strawberry upgrade that moves GraphiQL's versions, `make graphiql-assets` must be run."""
    sources = json.loads((STATIC_DIR / "graphiql" / "SOURCES.json").read_text())
    listed = {(s["package"], s["version"], file): integrity for s in sources for file, integrity in s["files"].items()}
    for asset in page_assets():
        assert listed.get((asset.package, asset.version, asset.file)) == asset.integrity, (
            f"{asset.path} is not vendored: run `make graphiql-assets`"
        )
        assert matches((STATIC_DIR / "graphiql" / asset.path).read_bytes(), asset.integrity)
    for source in sources:
        assert source["license"] == "MIT"
