"""Parts going away and coming back: object storage (a moto server of this test's own, stopped and
restarted) and the database (reached through a TCP relay this test closes and reopens). The app is
never restarted: it must report the fault clearly, save nothing half-way, and recover by itself."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
import pytest

from app.main import create_app
from app.models import Record, Upload
from tests import files
from tests.conftest import (
    BACKEND,
    Harness,
    MotoServer,
    StorageServer,
    free_port,
    make_settings,
    post_form,
    s3_client,
    uploaded_key,
)
from tests.gql import ATTACHMENT_PRESIGN, IMAGE_PRESIGN, RECORD, RECORD_CREATE, RECORDS


@contextlib.asynccontextmanager
async def app_on(server: StorageServer, database_url: str) -> AsyncIterator[Harness]:
    """The app on a storage server of the test's own (which it may stop and start). Documents
    (`read: owner`) are read back: anonymous mode has no owners, so only ANONYMOUS_READS=all can."""
    settings = make_settings(server, database_url, ANONYMOUS_READS="all")
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        await app.state.services.storage.ensure_bucket(())
        async with (
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as http,
            s3_client(server) as s3,
        ):
            yield Harness(app, settings, http, s3, server)


async def presign_and_post_photo(h: Harness) -> str:
    presigned = (await h.ok(IMAGE_PRESIGN, {"table": "photos", "prop": "image", "type": "image/png"}))[
        "image_presign_url"
    ]
    assert (await post_form(presigned, files.png(), "p.png", "image/png")).status_code == 201
    return f"{presigned['upload_url'].rstrip('/')}/{quote(uploaded_key(presigned, 'p.png'))}"


async def save_photo(h: Harness, url: str) -> dict[str, Any]:
    return await h.gql(RECORD_CREATE, {"table": "photos", "prop": "image", "props": [{"name": "image", "value": url}]})


async def test_storage_down_and_back(database_url: str) -> None:
    moto = MotoServer()  # our own: stopping the shared one would break the other tests
    moto.start()
    try:
        async with app_on(moto, database_url) as h:
            presigned = (
                await h.ok(
                    ATTACHMENT_PRESIGN,
                    {"table": "documents", "prop": "resume", "type": "application/pdf", "name": "cv.pdf"},
                )
            )["attachment_presign_url"]
            assert (await post_form(presigned, files.pdf(), "cv.pdf", "application/pdf")).status_code == 201
            props = [{"name": "resume", "value": presigned["url"]}]
            document = (await h.ok(RECORD_CREATE, {"table": "documents", "prop": "resume", "props": props}))[
                "record_create"
            ]
            pending = await presign_and_post_photo(h)

            moto.stop()

            # Presigning is local signing: uploads can still be prepared.
            later = (await h.ok(IMAGE_PRESIGN, {"table": "photos", "prop": "image"}))["image_presign_url"]
            assert "x-amz-signature" in later["upload_url_payload"]
            # Saving needs storage to confirm the file: a clear, retryable error and nothing saved.
            body = await save_photo(h, pending)
            assert body["data"] is None
            assert body["errors"][0]["extensions"]["code"] == "STORAGE_UNAVAILABLE"
            assert await Record.filter(table="photos").count() == 0
            assert await Upload.filter(status="issued", table="photos").count() == 2
            # Private URLs are signed locally, so reads go on.
            seen = await h.ok(RECORD, {"id": document["id"], "prop": "resume"})
            assert seen["record"]["upload"], (document, seen)
            url = seen["record"]["upload"]["url"]
            assert "X-Amz-Signature" in url
            ready = await h.http.get("/readyz")
            assert ready.status_code == 503
            assert ready.json()["checks"]["storage"].startswith("unavailable")
            assert ready.json()["checks"]["database"] == "ok"

            moto.start()  # same port; moto keeps nothing, so the bucket comes back empty

            await h.app.state.services.storage.ensure_bucket(())
            assert (await h.http.get("/readyz")).status_code == 200
            again = await presign_and_post_photo(h)
            saved = await save_photo(h, again)
            assert "errors" not in saved, saved
            assert saved["data"]["record_create"]["upload"]["size"] == len(files.png())
    finally:
        moto.stop()


class Relay:
    """A TCP relay to PostgreSQL that the test can cut and restore, like a network partition."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = free_port()
        self.server: asyncio.Server | None = None
        self.writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()
        for writer in list(self.writers):
            writer.close()
        await self.server.wait_closed()
        self.server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self.target)
        self.writers |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError, OSError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self.writers -= {writer, up_writer}


@pytest.mark.skipif(BACKEND != "postgres", reason="a network fault needs a networked database (TEST_DATABASE=postgres)")
async def test_database_down_and_back(moto: MotoServer, database_url: str) -> None:
    parts = urlsplit(database_url)
    relay = Relay((parts.hostname or "127.0.0.1", parts.port or 5432))
    await relay.start()
    relayed = database_url.replace(parts.netloc, f"{parts.username}@127.0.0.1:{relay.port}")
    records = {"table": "photos", "prop": "image"}
    try:
        async with app_on(moto, relayed) as h:
            url = await presign_and_post_photo(h)
            assert "errors" not in await save_photo(h, url)

            await relay.stop()

            for query, variables in [
                (RECORDS, records),
                (IMAGE_PRESIGN, {"table": "photos", "prop": "image"}),
                (RECORD_CREATE, {**records, "props": [{"name": "caption", "value": "x"}]}),
            ]:
                body = await h.gql(query, variables)
                assert body["errors"][0]["extensions"]["code"] == "DATABASE_UNAVAILABLE", body
                assert "Traceback" not in str(body)
            # REST answers the same code with its status, in its own shape.
            init = {"table": "documents", "property_name": "resume", "file_name": "a.pdf", "size": 2048}
            rest = await h.http.post("/upload/init", json={**init, "content_type": "application/pdf"})
            assert rest.status_code == 503, rest.text
            assert rest.json()["error"]["code"] == "DATABASE_UNAVAILABLE"
            ready = await h.http.get("/readyz")
            assert ready.status_code == 503 and ready.json()["checks"]["database"].startswith("unavailable")

            await relay.start()

            # The pool reconnects by itself; allow it one request to notice its connections died.
            for _ in range(3):
                body = await h.gql(RECORDS, records)
                if "errors" not in body:
                    break
            assert body["data"]["records"]["total_entries"] == 1
            assert (await h.http.get("/readyz")).status_code == 200
            assert "errors" not in await save_photo(h, await presign_and_post_photo(h))
    finally:
        if relay.server is not None:
            await relay.stop()
