"""`make run`'s entry point, as a user starts it: embedded storage, migrations, the API, clean stop."""

from __future__ import annotations

import hashlib
import re
import socket
import time
from pathlib import Path

import boto3
import httpx
from app.embedded_storage import CORS_EXPOSE_HEADERS

from app.run import start_embedded_storage
from tests import files
from tests.conftest import free_port
from tests.live import start_live_server, stop_live_server


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
        httpx.get(f"{storage}/moto-api/", timeout=1)
        raise AssertionError("embedded storage still running")
    except httpx.ConnectError:
        pass


def test_embedded_storage_answers_a_form_post_with_s3s_headers() -> None:
    """moto alone answers a POST upload with no ETag and no Location, and exposes neither to browsers;
    Uppy's AwsS3 then never finishes. The embedded storage adds them, as S3 does."""
    storage = start_embedded_storage(port=free_port())
    try:
        s3 = boto3.client(
            "s3", endpoint_url=storage.url, region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t"
        )
        s3.create_bucket(Bucket="uploads")
        origin = "http://127.0.0.1:8000"
        s3.put_bucket_cors(
            Bucket="uploads",
            CORSConfiguration={
                "CORSRules": [
                    {
                        "AllowedOrigins": [origin],
                        "AllowedMethods": ["POST"],
                        "ExposeHeaders": list(CORS_EXPOSE_HEADERS),
                    }
                ]
            },
        )
        data = files.png()
        fields = {"key": "photos/image/abc/${filename}", "success_action_status": "201"}
        posted = httpx.post(
            storage.url + "/uploads", data=fields, files={"file": ("a b.png", data)}, headers={"Origin": origin}
        )
        assert posted.status_code == 201, posted.text
        assert posted.headers["ETag"] == '"' + hashlib.md5(data).hexdigest() + '"'
        assert posted.headers["Location"] == storage.url + "/uploads/photos/image/abc/a%20b.png"
        assert posted.headers["Access-Control-Allow-Origin"] == origin
        assert posted.headers["Access-Control-Expose-Headers"] == "ETag, Location"
        stored = s3.get_object(Bucket="uploads", Key="photos/image/abc/a b.png")
        assert stored["Body"].read() == data and stored["ETag"] == posted.headers["ETag"]
        # Everything else is moto's own answer: a refused POST keeps its error and gets no ETag.
        refused = httpx.post(storage.url + "/missing-bucket", data=fields, files={"file": ("x.png", data)})
        assert refused.status_code == 404 and "ETag" not in refused.headers
        assert httpx.get(storage.url + "/moto-api/").status_code == 200
    finally:
        storage.stop()
