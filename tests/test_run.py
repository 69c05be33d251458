"""`make run`'s entry point, as a user starts it: embedded storage, migrations, the API, clean stop."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from app.settings import ROOT
from tests import files
from tests.conftest import free_port, wait_for_http


def test_make_run_serves_the_whole_flow_and_stops_cleanly(tmp_path: Path) -> None:
    port, storage_port = free_port(), free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("S3_", "AWS_", "DATABASE_URL", "QUEUE_URL"))},
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "STORAGE_PORT": str(storage_port),
        "DATABASE_URL": f"sqlite://{tmp_path}/run.sqlite3",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.run"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(base + "/healthz", timeout=60)
        assert httpx.get(base + "/readyz").json()["status"] == "ready"
        query = """mutation { image_presign_url(options: {model_property: {model_schema_name: "photos",
                   property_name: "image"}, content_type: "image/png", file_name: "a.png"}) {
                   upload_url upload_url_payload url } }"""
        presigned = httpx.post(base + "/graphql", json={"query": query}).json()["data"]["image_presign_url"]
        assert presigned["upload_url"].startswith(f"http://127.0.0.1:{storage_port}/")
        data = files.png()
        stored = httpx.post(
            presigned["upload_url"], data=presigned["upload_url_payload"], files={"file": ("a.png", data)}
        )
        assert stored.status_code == 201
        save = """mutation($url: String) { record_create(record: {table: "photos",
                  properties: [{name: "image", value: $url}]}) { id property(name: "image") } }"""
        record = httpx.post(base + "/graphql", json={"query": save, "variables": {"url": presigned["url"]}}).json()
        assert httpx.get(record["data"]["record_create"]["property"]).content == data
        # Browsers on the API's origin may POST to the embedded bucket (CORS rules set at start-up).
        preflight = httpx.options(
            presigned["upload_url"], headers={"Origin": base, "Access-Control-Request-Method": "POST"}
        )
        assert preflight.status_code == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, output
    assert f"GraphQL API and GraphiQL: {base}/graphql" in output
    # The embedded storage stopped with the server.
    try:
        httpx.get(f"http://127.0.0.1:{storage_port}/moto-api/", timeout=1)
        raise AssertionError("embedded storage still running")
    except httpx.ConnectError:
        pass
