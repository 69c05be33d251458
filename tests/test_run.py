"""`make run`'s entry point, as a user starts it: embedded storage, migrations, the API, clean stop."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests import files
from tests.live import start_live_server, stop_live_server


def test_make_run_serves_the_whole_flow_and_stops_cleanly(tmp_path: Path) -> None:
    server = start_live_server(tmp_path)
    base, storage = server.url, server.storage_url
    try:
        assert httpx.get(base + "/readyz").json()["status"] == "ready"
        query = """mutation { image_presign_url(options: {model_property: {model_schema_name: "photos",
                   property_name: "image"}, content_type: "image/png", file_name: "a.png"}) {
                   upload_url upload_url_payload url } }"""
        presigned = httpx.post(base + "/graphql", json={"query": query}).json()["data"]["image_presign_url"]
        assert presigned["upload_url"].startswith(storage + "/")
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
        stop_live_server(server)
    assert server.process.returncode == 0, server.log()
    assert f"GraphQL API and GraphiQL: {base}/graphql" in server.log()
    # The embedded storage stopped with the server.
    try:
        httpx.get(f"{storage}/moto-api/", timeout=1)
        raise AssertionError("embedded storage still running")
    except httpx.ConnectError:
        pass
