"""Apollo Client 4 (from npm) runs the upload flow against the server as `make run` starts it, and
finds our error codes in `CombinedGraphQLErrors.errors[].extensions.code` (tests/js/apollo_flow.mjs);
with GraphQLWsLink on graphql-ws's client it follows the versions of an upload as they are built
(tests/js/apollo_subscription.mjs)."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from app.settings import ROOT
from tests.live import LiveServer, live_server

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
