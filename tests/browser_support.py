"""Headless Chromium for the browser tests: Debian's /usr/bin/chromium driven by Playwright (whose own
browser download is never used), with no network chatter of its own. A test module imports the
`browser` and `page` fixtures from here, and `live_server` from tests/live.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from app.settings import ROOT
from tests.live import LiveServer

playwright_api = pytest.importorskip("playwright.sync_api")

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = ROOT / "test-artifacts"


def console_problem(msg: object) -> str:
    """A console error in words; "Failed to load resource" gets the resource's URL, which its text lacks."""
    text = f"console {msg.type}: {msg.text}"  # type: ignore[attr-defined]
    url = (msg.location or {}).get("url")  # type: ignore[attr-defined]
    return f"{text} ({url})" if url and msg.text.startswith("Failed to load resource") else text  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not CHROMIUM.exists():
        pytest.fail("Chromium is missing at /usr/bin/chromium: run `make test-deps` (apt-get install chromium)")
    with playwright_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser: object, live_server: LiveServer) -> Iterator[object]:
    """A fresh page; `page.problems` collects uncaught page errors and console errors."""
    context = browser.new_context(accept_downloads=True, viewport={"width": 1100, "height": 900})  # type: ignore[attr-defined]
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    page.on("console", lambda msg: problems.append(console_problem(msg)) if msg.type == "error" else None)
    page.problems = problems
    yield page
    context.close()
