"""`make run`'s entry point, as a user starts it: embedded storage (SeaweedFS), migrations, the API, a
clean stop; files, records and versions that survive a restart, right after Ctrl-C too; two instances
side by side."""

from __future__ import annotations

import hashlib
import re
import signal
import socket
import time
from pathlib import Path
from typing import Any

import boto3
import httpx

from app.embedded import seaweedfs
from app.storage.s3 import CORS_EXPOSE_HEADERS
from tests import files
from tests.conftest import free_port
from tests.live import LiveServer, start_live_server, stop_live_server


def read_response(conn: socket.socket) -> tuple[int, bytes]:
    """One whole HTTP/1.1 response (status, body) from a kept-alive connection: headers, then
    Content-Length bytes of body, however the server splits them into segments."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(4096)
        assert chunk, f"connection closed after {data!r}"
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    length = int(re.search(rb"(?im)^content-length:\s*(\d+)\r?$", head)[1])  # type: ignore[index]
    while len(body) < length:
        chunk = conn.recv(4096)
        assert chunk, f"connection closed after {data!r}"
        body += chunk
    return int(head.split(b" ", 2)[1]), body


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
        # An idle keep-alive connection outlives uvicorn's default 5 s (KEEP_ALIVE_SECONDS, 75 s):
        # clients that pool connections for longer (aiohttp 15 s, an ALB 60 s) must not find it closed.
        with socket.create_connection(("127.0.0.1", int(base.rsplit(":", 1)[1])), timeout=10) as conn:
            request = b"GET /healthz HTTP/1.1\r\nHost: api\r\n\r\n"
            conn.sendall(request)
            assert read_response(conn) == (200, b'{"status":"ok"}')
            time.sleep(6)
            conn.sendall(request)
            assert read_response(conn) == (200, b'{"status":"ok"}')
    finally:
        stop_live_server(server)
    assert server.process.returncode == 0, server.log()
    assert f"GraphQL API and GraphiQL: {base}/graphql" in server.log()
    # The embedded storage stopped with the server.
    try:
        httpx.get(f"{storage}/", timeout=1)
        raise AssertionError("embedded storage still running")
    except httpx.ConnectError:
        pass


def test_embedded_storage_answers_a_form_post_with_s3s_headers(tmp_path: Path) -> None:
    """SeaweedFS answers a POST upload with an ETag but no Location; Uppy's AwsS3 logs an error without
    one. The embedded storage's front adds it, as S3 sends it, readable through the bucket's CORS rules."""
    storage = seaweedfs.start(tmp_path / "seaweedfs", port=free_port())
    try:
        creds = storage.credentials
        s3 = boto3.client(
            "s3",
            endpoint_url=storage.url,
            region_name="us-east-1",
            aws_access_key_id=creds.access_key_id,
            aws_secret_access_key=creds.secret_access_key,
        )
        s3.create_bucket(Bucket="uploads")
        origin = "http://127.0.0.1:8000"
        rule = {"AllowedOrigins": [origin], "AllowedMethods": ["POST"], "ExposeHeaders": list(CORS_EXPOSE_HEADERS)}
        s3.put_bucket_cors(Bucket="uploads", CORSConfiguration={"CORSRules": [rule]})
        data = files.png()
        post = s3.generate_presigned_post(
            "uploads",
            "photos/image/abc/${filename}",
            Fields={"success_action_status": "201"},
            Conditions=[{"success_action_status": "201"}],
        )
        posted = httpx.post(
            post["url"], data=post["fields"], files={"file": ("a b.png", data)}, headers={"Origin": origin}
        )
        assert posted.status_code == 201, posted.text
        assert posted.headers["ETag"] == '"' + hashlib.md5(data).hexdigest() + '"'
        assert posted.headers["Location"] == storage.url + "/uploads/photos/image/abc/a%20b.png"
        assert posted.headers["Access-Control-Allow-Origin"] == origin
        assert set(posted.headers["Access-Control-Expose-Headers"].split(", ")) == {"ETag", "Location"}
        stored = s3.get_object(Bucket="uploads", Key="photos/image/abc/a b.png")
        assert stored["Body"].read() == data and stored["ETag"] == posted.headers["ETag"]
        # Everything else is SeaweedFS's own answer: a refused POST keeps its error and gets no Location.
        refused = httpx.post(post["url"], data={**post["fields"], "key": "elsewhere/x"}, files={"file": ("x", data)})
        assert refused.status_code == 403 and "Location" not in refused.headers
        # HEAD and ranged GET pass through with their headers.
        head = httpx.head(
            s3.generate_presigned_url("head_object", Params={"Bucket": "uploads", "Key": "photos/image/abc/a b.png"})
        )
        assert head.status_code == 200 and head.headers["Content-Length"] == str(len(data))
    finally:
        storage.stop()


PHOTO = """mutation { image_presign_url(options: {model_property: {model_schema_name: "photos",
   property_name: "image"}, content_type: "image/png", file_name: "a.png"}) { upload_url upload_url_payload url } }"""
DOCUMENT = """mutation { attachment_presign_url(options: {model_property: {model_schema_name: "documents",
   property_name: "resume"}, content_type: "application/pdf", file_name: "cv.pdf"}) {
   upload_url upload_url_payload url } }"""
SAVE = """mutation($table: String!, $prop: String!, $url: String) { record_create(record: {table: $table,
   properties: [{name: $prop, value: $url}]}) { id } }"""
READ = """query($id: ID!, $prop: String!) { record(id: $id) {
   upload: property_upload(name: $prop) { url version_details { name status url } } } }"""


def gql(server: LiveServer, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = httpx.post(
        server.url + "/graphql", json={"query": query, "variables": variables or {}}
    ).json()
    assert not body.get("errors"), body
    return body["data"]


def upload(server: LiveServer, query: str, table: str, prop: str, data: bytes, name: str) -> str:
    presigned = next(iter(gql(server, query).values()))
    stored = httpx.post(presigned["upload_url"], data=presigned["upload_url_payload"], files={"file": (name, data)})
    assert stored.status_code == 201, stored.text
    record_id: str = gql(server, SAVE, {"table": table, "prop": prop, "url": presigned["url"]})["record_create"]["id"]
    return record_id


def read(server: LiveServer, record_id: str, prop: str) -> dict[str, Any]:
    result: dict[str, Any] = gql(server, READ, {"id": record_id, "prop": prop})["record"]["upload"]
    return result


def test_files_records_and_versions_survive_a_restart_right_after_ctrl_c(tmp_path: Path) -> None:
    """Two instances side by side (only PORT and STORAGE_PORT differ); one is stopped with Ctrl-C and
    started again at once, with its default database (kept with the embedded storage)."""
    port, storage_port = free_port(), free_port()
    first = start_live_server(tmp_path, port=port, storage_port=storage_port, database=False)
    other = start_live_server(tmp_path, database=False)
    try:
        photo, pdf = files.png(), files.pdf()
        photo_id = upload(first, PHOTO, "photos", "image", photo, "a.png")
        pdf_id = upload(first, DOCUMENT, "documents", "resume", pdf, "cv.pdf")
        # The worker beside the API builds the photo's versions.
        deadline = time.monotonic() + 60
        while {v["status"] for v in read(first, photo_id, "image")["version_details"]} != {"ready"}:
            assert time.monotonic() < deadline, read(first, photo_id, "image")
            time.sleep(0.2)
        # ...and scans the résumé (documents.resume scans): it has a URL once clamd found it clean.
        while read(first, pdf_id, "resume")["url"] is None:
            assert time.monotonic() < deadline, read(first, pdf_id, "resume")
            time.sleep(0.2)
        assert "the worker beside the API scans files saved into documents.resume" in first.log()
        assert upload(other, PHOTO, "photos", "image", photo, "a.png") == "1"

        stop_live_server(first, signal.SIGINT)
        assert first.process.returncode == 0, first.log()
        first = start_live_server(tmp_path, port=port, storage_port=storage_port, database=False)

        image = read(first, photo_id, "image")
        assert httpx.get(image["url"]).content == photo
        for version in image["version_details"]:
            assert version["status"] == "ready" and httpx.get(version["url"]).status_code == 200
        assert httpx.get(read(first, pdf_id, "resume")["url"]).content == pdf
        # The other instance kept its own records and files.
        assert httpx.get(read(other, "1", "image")["url"]).content == photo
    finally:
        stop_live_server(first)
        stop_live_server(other)
