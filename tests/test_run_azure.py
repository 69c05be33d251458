"""`make run` with STORAGE_BACKEND=azure and no Azure account: Azurite is the embedded storage (its data,
and the records, under var/embedded/<STORAGE_PORT>/), with a private container, a public one and CORS
for the demo page; the whole flow over it, versions by the worker beside the API, a clean stop, and
everything still there after a restart right after Ctrl-C."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from app.embedded import azurite
from app.run import describe_storage, wants_embedded, with_embedded_storage
from app.settings import Settings
from tests import files
from tests.conftest import free_port
from tests.live import LiveServer, start_live_server, stop_live_server

PHOTO = """mutation { image_presign_url(options: {model_property: {model_schema_name: "photos",
   property_name: "image"}, content_type: "image/png", file_name: "a.png"}) {
   upload_url upload_url_payload method headers url } }"""
DOCUMENT = """mutation { attachment_presign_url(options: {model_property: {model_schema_name: "documents",
   property_name: "resume"}, content_type: "application/pdf", file_name: "cv.pdf"}) {
   upload_url upload_url_payload method headers url } }"""
SAVE = """mutation($table: String!, $prop: String!, $url: String) { record_create(record: {table: $table,
   properties: [{name: $prop, value: $url}]}) { id } }"""
READ = """query($id: ID!, $prop: String!) { record(id: $id) {
   upload: property_upload(name: $prop) { url file_name version_details { name status url } } } }"""


def gql(server: LiveServer, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = httpx.post(
        server.url + "/graphql", json={"query": query, "variables": variables or {}}
    ).json()
    assert not body.get("errors"), body
    return body["data"]


def upload(server: LiveServer, query: str, table: str, prop: str, data: bytes) -> str:
    presigned = next(iter(gql(server, query).values()))
    assert (presigned["method"], presigned["upload_url_payload"]) == ("PUT", {})
    stored = httpx.put(presigned["upload_url"], content=data, headers=presigned["headers"])
    assert stored.status_code == 201, stored.text
    record_id: str = gql(server, SAVE, {"table": table, "prop": prop, "url": presigned["url"]})["record_create"]["id"]
    return record_id


def read(server: LiveServer, record_id: str, prop: str) -> dict[str, Any]:
    result: dict[str, Any] = gql(server, READ, {"id": record_id, "prop": prop})["record"]["upload"]
    return result


def versions_ready(server: LiveServer, record_id: str, within: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + within
    while True:
        image = read(server, record_id, "image")
        if {v["status"] for v in image["version_details"]} == {"ready"}:
            return image
        assert time.monotonic() < deadline, image
        time.sleep(0.2)


def test_make_run_on_azurite_serves_the_flow_and_keeps_everything_across_a_restart(tmp_path: Path) -> None:
    port, storage_port = free_port(), free_port()
    server = start_live_server(tmp_path, port=port, storage_port=storage_port, database=False, STORAGE_BACKEND="azure")
    try:
        ready = httpx.get(server.url + "/readyz").json()
        # (A scanner entry too where make run found clamd to start.)
        assert ready["status"] == "ready" and ready["checks"]["storage"] == ready["checks"]["database"] == "ok"
        endpoint = azurite.blob_endpoint("127.0.0.1", storage_port)
        presigned = gql(server, PHOTO)["image_presign_url"]
        assert presigned["upload_url"].startswith(f"{endpoint}/uploads/cache/photos/image/")
        assert presigned["headers"] == {
            "x-ms-blob-type": "BlockBlob",
            "Content-Type": "image/png",
            "x-ms-blob-content-disposition": "attachment",
        }
        # Browsers on the API's origin may PUT to the embedded storage (the account's CORS rules).
        preflight = httpx.options(
            presigned["upload_url"],
            headers={
                "Origin": server.url,
                "Access-Control-Request-Method": "PUT",
                "Access-Control-Request-Headers": ",".join(presigned["headers"]),
            },
        )
        assert preflight.status_code == 200 and preflight.headers["access-control-allow-origin"] == server.url
        photo, pdf = files.png(), files.pdf()
        photo_id = upload(server, PHOTO, "photos", "image", photo)
        pdf_id = upload(server, DOCUMENT, "documents", "resume", pdf)
        image = versions_ready(server, photo_id)  # the worker beside the API, over the embedded queue
        # Public: the public container's plain URL; private: a SAS GET of the private container.
        assert image["url"].startswith(f"{endpoint}/uploads-public/photos/image/")
        assert httpx.get(image["url"]).content == photo
        document = read(server, pdf_id, "resume")["url"]
        assert document.startswith(f"{endpoint}/uploads/documents/resume/")
        assert {"sig", "se", "sp"} <= set(parse_qs(urlsplit(document).query))
        got = httpx.get(document)
        assert got.content == pdf and got.headers["content-disposition"] == 'inline; filename="cv.pdf"'
        assert httpx.get(document.split("?", 1)[0]).status_code in (403, 404)

        stop_live_server(server, signal.SIGINT)
        assert server.process.returncode == 0, server.log()
        assert f"embedded (Azurite) at {endpoint}" in server.log()
        try:
            httpx.get(endpoint, timeout=1)
            raise AssertionError("Azurite still running after the server stopped")
        except httpx.ConnectError:
            pass
        server = start_live_server(
            tmp_path, port=port, storage_port=storage_port, database=False, STORAGE_BACKEND="azure"
        )
        image = read(server, photo_id, "image")
        assert httpx.get(image["url"]).content == photo
        for version in image["version_details"]:
            assert version["status"] == "ready" and httpx.get(version["url"]).status_code == 200
        assert httpx.get(read(server, pdf_id, "resume")["url"]).content == pdf
    finally:
        stop_live_server(server)
    assert (tmp_path / "embedded" / str(storage_port) / "uploads-azure.sqlite3").exists()
    assert (tmp_path / "embedded" / str(storage_port) / "azurite" / "azurite.log").exists()


def test_what_make_run_embeds_for_azure(tmp_path: Path) -> None:
    env = {"STORAGE_BACKEND": "azure", "EMBEDDED_DIR": str(tmp_path), "STORAGE_PORT": str(free_port())}
    settings = Settings.from_env(env)
    assert wants_embedded(settings)
    settings, embedded = with_embedded_storage(settings)
    try:
        assert (settings.azure_storage_account, settings.azure_blob_endpoint) == (azurite.ACCOUNT, embedded.storage.url)
        assert (settings.azure_container, settings.azure_public_container) == ("uploads", "uploads-public")
        assert settings.run_worker and settings.embedded_storage
        assert settings.database_url == f"sqlite://{tmp_path / env['STORAGE_PORT'] / 'uploads-azure.sqlite3'}"
        assert describe_storage(settings, embedded).endswith(", container uploads, public files in uploads-public")
    finally:
        embedded.stop()


def test_an_azure_account_embeds_nothing() -> None:
    env = {
        "STORAGE_BACKEND": "azure",
        "AZURE_STORAGE_ACCOUNT": "myaccount",
        "AZURE_STORAGE_KEY": azurite.KEY.value,
        "AZURE_CONTAINER": "uploads",
        "AZURE_PUBLIC_CONTAINER": "public-files",
    }
    settings = Settings.from_env(env)
    assert not wants_embedded(settings)
    assert (
        describe_storage(settings, None) == "Azure account myaccount, container uploads, public files in public-files"
    )
