"""The demo page's files and GraphiQL's example over ASGI, and the bucket CORS origins of `make run`
(the browser itself is in test_browser.py)."""

from __future__ import annotations

from app.graphiql import EXAMPLE_DOCUMENT, graphiql_html
from app.run import page_origins
from app.settings import Settings
from tests.conftest import Harness


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
