"""Apollo Client 4 (from npm) runs the upload flow against the server as `make run` starts it, and
finds our error codes in `CombinedGraphQLErrors.errors[].extensions.code` (tests/js/apollo_flow.mjs);
the Apollo recipe of docs/frontend.md runs as it is written, and so does its live status recipe; and
with GraphQLWsLink on graphql-ws's client it follows the versions of an upload as they are built
(tests/js/apollo_subscription.mjs)."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
from typing import Any

import httpx
import pytest

from app.settings import ROOT
from tests import files
from tests.gql import RECORD
from tests.live import LiveServer, live_server
from tests.recipes import recipe

__all__ = ["live_server"]  # a fixture, imported for pytest

JS = ROOT / "tests" / "js"


@pytest.fixture(scope="module")
def node() -> str:
    path = shutil.which("node")
    if path is None:
        pytest.fail("node is not installed: Node.js 20 or newer is needed for the Apollo Client test")
    wanted = json.loads((JS / "package.json").read_text())["dependencies"]
    if not all((JS / "node_modules" / name / "package.json").is_file() for name in wanted):
        npm = shutil.which("npm")
        if npm is None:
            pytest.fail("npm is not installed: it is needed to install Apollo Client (npm ci in tests/js)")
        done = subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=JS, capture_output=True, text=True)
        assert done.returncode == 0, f"npm ci failed:\n{done.stdout}\n{done.stderr}"
    return path


def test_apollo_client_flow_and_error_codes(node: str, live_server: LiveServer) -> None:
    run = subprocess.run(
        [node, "apollo_flow.mjs", live_server.url], cwd=JS, capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, f"apollo_flow.mjs failed:\n{run.stdout}\n{run.stderr}\nserver log:\n{live_server.log()}"
    summary = json.loads(run.stdout.strip().splitlines()[-1])
    assert summary["ok"] is True
    steps = ["tables", "image_presign_url", "POST to storage", "record_create", "versions", "error codes"]
    assert summary["steps"] == steps


# Appended to the docs' Apollo recipe: upload a real PNG, then a file the property refuses.
RECIPE_DRIVER = """
const png = Buffer.from(process.env.RECIPE_PNG_BASE64, "base64");
const id = await uploadPhoto(new File([png], "cat.png", { type: "image/png" }));
let codes = null;
try {
  await uploadPhoto(new File(["not an image ".repeat(100)], "notes.txt", { type: "text/plain" }));
} catch (error) {
  codes = errorCodes(error);
}
console.log(JSON.stringify({ id, codes }));
"""


# Recipe modules are written under node_modules so that Node resolves their imports from tests/js.
RECIPES = JS / "node_modules" / ".recipes"


def run_recipes(
    node: str, live_server: LiveServer, modules: dict[str, str], *, timeout: float, env: dict[str, str]
) -> dict[str, Any]:
    """Write `modules` (name -> source) as ES modules, run the last one in Node and return the JSON its
    last line prints. Each module's file URL is in RECIPE_<NAME>_MODULE, for the others to import."""
    RECIPES.mkdir(exist_ok=True)
    paths = {name: RECIPES / f"{name}-{os.getpid()}.mjs" for name in modules}
    urls = {f"RECIPE_{name.upper().replace('-', '_')}_MODULE": path.as_uri() for name, path in paths.items()}
    try:
        for name, source in modules.items():
            paths[name].write_text(source)
        run = subprocess.run(
            [node, str(paths[list(modules)[-1]])],
            cwd=JS,
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, **urls, **env},
        )
    finally:
        for path in paths.values():
            path.unlink(missing_ok=True)
    assert run.returncode == 0, f"the recipe failed:\n{run.stdout}\n{run.stderr}\nserver log:\n{live_server.log()}"
    return dict(json.loads(run.stdout.strip().splitlines()[-1]))


def test_docs_apollo_recipe_uploads_and_reads_our_codes(node: str, live_server: LiveServer) -> None:
    """The Apollo recipe of docs/frontend.md as written, its server address pointed at the test server."""
    source = recipe("apollo")
    assert source.count("http://127.0.0.1:8000/graphql") == 1
    png = files.png()
    modules = {"apollo": source.replace("http://127.0.0.1:8000", live_server.url) + RECIPE_DRIVER}
    result = run_recipes(
        node, live_server, modules, timeout=60, env={"RECIPE_PNG_BASE64": base64.b64encode(png).decode()}
    )
    assert result["codes"] == ["CONTENT_TYPE_NOT_ALLOWED"]
    answer = httpx.post(
        live_server.url + "/graphql",
        json={"query": RECORD, "variables": {"id": result["id"], "prop": "image"}},
        timeout=10,
    ).json()
    url = answer["data"]["record"]["upload"]["url"]
    assert url.endswith("/cat.png")
    assert httpx.get(url, timeout=10).content == png


def test_apollo_client_follows_versions_through_the_subscription(node: str, live_server: LiveServer) -> None:
    run = subprocess.run(
        [node, "apollo_subscription.mjs", live_server.url], cwd=JS, capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, (
        f"apollo_subscription.mjs failed:\n{run.stdout}\n{run.stderr}\nserver log:\n{live_server.log()}"
    )
    summary = json.loads(run.stdout.strip().splitlines()[-1])
    assert summary["ok"] is True and summary["events"] >= 2
    assert summary["steps"] == ["tables", "record_create", "subscription", "error codes"]


# Runs the docs' live status recipe in Node 20 (no global WebSocket) on the photo the Apollo recipe saves.
LIVE_PRELUDE = """import WebSocket from "ws";
globalThis.WebSocket ??= WebSocket;
"""
LIVE_DRIVER = """
const { uploadPhoto, errorCodes } = await import(process.env.RECIPE_APOLLO_MODULE);
const png = Buffer.from(process.env.RECIPE_PNG_BASE64, "base64");
const id = await uploadPhoto(new File([png], "live.png", { type: "image/png" }));
const seen = [];
const last = await followUpload(id, "image", (state) => seen.push(state.version_details.map((v) => v.status)));
let codes = null;
try {
  await followUpload("999999999", "image", () => {});
} catch (error) {
  codes = errorCodes(error);
}
console.log(JSON.stringify({ id, seen, last, codes }));
"""


def test_docs_live_status_recipe_follows_the_versions(node: str, live_server: LiveServer) -> None:
    """The Apollo live status recipe of docs/frontend.md as written (both addresses pointed at the test
    server), following the versions of a photo saved by the Apollo recipe until the subscription completes."""
    source = recipe("apollo-live")
    assert source.count("ws://127.0.0.1:8000/graphql") == 1 and source.count("http://127.0.0.1:8000/graphql") == 1
    ws_url = live_server.url.replace("http://", "ws://", 1)
    modules = {  # the last one runs; it imports the first
        "apollo": recipe("apollo").replace("http://127.0.0.1:8000", live_server.url),
        "apollo-live": LIVE_PRELUDE
        + source.replace("ws://127.0.0.1:8000", ws_url).replace("http://127.0.0.1:8000", live_server.url)
        + LIVE_DRIVER,
    }
    env = {"RECIPE_PNG_BASE64": base64.b64encode(files.png()).decode()}
    result = run_recipes(node, live_server, modules, timeout=90, env=env)
    declared = ["thumb", "medium", "large"]
    assert [v["name"] for v in result["last"]["version_details"]] == declared
    assert result["seen"][-1] == ["ready"] * len(declared)
    thumb = httpx.get(result["last"]["versions"]["thumb"], timeout=10)
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/webp"
    assert result["codes"] == ["RECORD_NOT_FOUND"]
