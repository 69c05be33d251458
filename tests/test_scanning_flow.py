"""Scan before serving, end to end: save through GraphQL or REST into a property with `scan: true`
(the shipped `documents.resume`, and test tables), the real worker over SQS (moto) streams the
quarantined object from real storage (moto, SeaweedFS) to a real clamd, and queries show the outcome.
A file is never served before it is found clean."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from app.embedded.clamd import EICAR, EICAR_FOUND, EmbeddedClamd
from app.models import Upload, UploadVersion
from app.queue import create_queue
from app.run import scanner_line
from app.scanning import CHANGED, notice
from app.settings import ROOT, Settings
from app.sweep import SweepConfig, Sweeper
from app.tables import load_tables
from app.worker import Worker, stop_gracefully
from tests import files
from tests.conftest import Harness, MotoServer, free_port, post_form
from tests.gql import ATTACHMENT_PRESIGN, IMAGE_PRESIGN
from tests.large import download, put
from tests.live import LiveServer, stop_live_server
from tests.scanning import eicar_in_a_zip, pdf_with, started_clamd, zip_with

MIB = 1024 * 1024
CREDS = Settings.from_env({"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "S3_BUCKET": "q"})
FAST = {
    "QUEUE_WAIT_SECONDS": 1,
    "VERSION_RETRY_BASE_SECONDS": 0,  # scans retry after MIN_RETRY_SECONDS (1 s)
    "RECONCILE_INTERVAL": 1,
    "RECONCILE_AFTER": 600,  # off unless a test turns it on
    # documents are `read: owner`: in anonymous mode only this reads them back (set where access rules exist).
    "ANONYMOUS_READS": "all",
}

ARCHIVES = """name: archives
properties:
  - name: file
    type: upload
    options:
      acl: public
      content_length: { gte: 0, lte: 102400 }   # KiB: up to 100 MiB
      content_types: [application/zip, application/pdf, application/octet-stream]
      scan: true
"""
PICTURES = """name: pictures
properties:
  - name: image
    type: image
    options:
      content_length: { gte: 1, lte: 10240 }
      scan: true
      versions:
        - { name: thumb, resize: { width: 40, height: 40 } }
"""

FIELDS = """id properties link: property(name: $prop)
  upload: property_upload(name: $prop) {
    url file_name size content_type scan_status scan_result versions version_details { name status url error }
  }"""
SAVE = f"""mutation($table: String!, $props: [PropertyInputType], $prop: String!) {{
  record_create(record: {{table: $table, properties: $props}}) {{ {FIELDS} }} }}"""
READ = f"""query($id: ID!, $prop: String!) {{ record(id: $id) {{ {FIELDS} }} }}"""
LIST = """query($table: String!, $prop: String!) { records(filter: {table: {value: $table}}, per_page: 100) {
  results { id properties link: property(name: $prop) upload: property_upload(name: $prop) { url versions } } } }"""


# --- set-up ---------------------------------------------------------------------------------


def scan_schema(tmp_path: Path) -> Path:
    """The shipped tables (documents.resume scans) plus `archives` (zips and big files, public) and
    `pictures` (a scanned image with a version)."""
    folder = tmp_path / "schema"
    folder.mkdir()
    for path in (ROOT / "app" / "schema").glob("*.yml"):
        (folder / path.name).write_bytes(path.read_bytes())
    (folder / "archives.yml").write_text(ARCHIVES)
    (folder / "pictures.yml").write_text(PICTURES)
    return folder


def where(clamd: EmbeddedClamd) -> str:
    return f"{clamd.address[0]}:{clamd.address[1]}"


@pytest.fixture
async def queue_url(moto: MotoServer) -> str:
    return await create_queue(CREDS, moto.url, f"jobs-{uuid.uuid4().hex[:8]}")


@pytest.fixture
def schema(tmp_path: Path) -> Path:
    return scan_schema(tmp_path)


async def scanning_app(harness_factory: Any, queue_url: str, schema: Path, clamd: str | None, **more: Any) -> Harness:
    """The API with the worker beside it (RUN_WORKER, as `make run`), scanning with the clamd at `clamd`."""
    settings: dict[str, Any] = {"QUEUE_URL": queue_url, "SCHEMA_DIR": str(schema), "RUN_WORKER": "true", **FAST}
    if clamd is not None:
        settings["CLAMD_ADDRESS"] = clamd
    h: Harness = await harness_factory(**(settings | more))
    return h


# --- helpers --------------------------------------------------------------------------------


async def upload(h: Harness, table: str, prop: str, data: bytes, name: str, ctype: str) -> str:
    """Presign, POST the form to storage as a browser does; the URL to save."""
    mutation = IMAGE_PRESIGN if table == "pictures" else ATTACHMENT_PRESIGN
    answer = await h.ok(mutation, {"table": table, "prop": prop, "type": ctype, "name": name})
    presigned = next(iter(answer.values()))
    response = await post_form(presigned, data, name, ctype)
    assert response.status_code == 201, response.text
    url: str = presigned["url"]
    assert url
    return url


async def save(h: Harness, table: str, prop: str, data: bytes, name: str, ctype: str) -> dict[str, Any]:
    url = await upload(h, table, prop, data, name, ctype)
    variables = {"table": table, "prop": prop, "props": [{"name": prop, "value": url}]}
    record: dict[str, Any] = (await h.ok(SAVE, variables))["record_create"]
    return record


async def read(h: Harness, record_id: str, prop: str) -> dict[str, Any]:
    record: dict[str, Any] = (await h.ok(READ, {"id": record_id, "prop": prop}))["record"]
    return record


def finished(record: dict[str, Any]) -> bool:
    upload = record["upload"]
    return upload is None or upload["scan_status"] in ("infected", "failed") or upload["url"] is not None


async def scanned(h: Harness, record_id: str, prop: str, within: float = 60) -> dict[str, Any]:
    """The record once its file's scan has ended (a clean file: once it is promoted and has its URL)."""
    deadline = time.monotonic() + within
    while True:
        record = await read(h, record_id, prop)
        if finished(record):
            return record
        assert time.monotonic() < deadline, f"still scanning: {record['upload']}"
        await asyncio.sleep(0.05)


def assert_unserved(record: dict[str, Any], prop: str) -> None:
    """No URL anywhere a query could show one."""
    upload = record["upload"]
    assert upload["url"] is None and upload["versions"] == {}
    assert all(v["url"] is None for v in upload["version_details"])
    assert record["properties"][prop] is None and record["link"] is None


async def token_keys(h: Harness, record_id: str) -> list[str]:
    """Every object of the record's upload in storage: quarantine and permanent."""
    upload = await Upload.get(record_id=int(record_id))
    return [k for k in await h.keys() if f"/{upload.token}/" in k]


def samples(text: str) -> dict[str, float]:
    """Every sample of a scrape, by name and labels: `name{label="value"}`."""
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
            out[f"{s.name}{{{labels}}}" if labels else s.name] = s.value
    return out


async def scrape(h: Harness) -> dict[str, float]:
    response = await h.http.get("/metrics")
    assert response.status_code == 200
    return samples(response.text)


# --- verdicts -------------------------------------------------------------------------------


@pytest.mark.backends("moto", "seaweedfs")
async def test_eicar_in_a_pdf_is_refused_deleted_and_never_served(
    harness_factory: Any, queue_url: str, schema: Path, clamd: EmbeddedClamd
) -> None:
    h = await scanning_app(harness_factory, queue_url, schema, where(clamd))
    before = await scrape(h)
    infected = pdf_with(EICAR)
    saved = await save(h, "documents", "resume", infected, "cv.pdf", "application/pdf")
    # Saved, verified, attached: pending in quarantine, and no URL in the answer.
    assert saved["upload"]["scan_status"] == "pending" and saved["upload"]["scan_result"] is None
    assert saved["upload"]["size"] == len(infected) and saved["upload"]["content_type"] == "application/pdf"
    assert_unserved(saved, "resume")

    # The same through REST: confirm says the scan is pending, and gives no URL.
    described = {"file_name": "b.pdf", "content_type": "application/pdf", "size": len(infected)}
    init = await h.http.post("/upload/init", json={"table": "documents", "property_name": "resume", **described})
    assert init.status_code == 200, init.text
    assert (await put(init.json()["upload_url"], infected, init.json()["headers"])).status_code == 200
    confirm = await h.http.post(
        "/upload/confirm", json={"table": "documents", "property_name": "resume", "key": init.json()["key"]}
    )
    assert confirm.status_code == 200, confirm.text
    confirmed = confirm.json()
    assert confirmed["url"] is None and confirmed["scan_status"] == "pending"

    for record_id in (saved["id"], confirmed["id"]):
        record = await scanned(h, record_id, "resume")
        assert (record["upload"]["scan_status"], record["upload"]["scan_result"]) == ("infected", EICAR_FOUND)
        assert_unserved(record, "resume")
        assert await token_keys(h, record_id) == []  # deleted from quarantine, never copied out of it
        upload = await Upload.get(record_id=int(record_id))
        assert (upload.status, upload.promotion) == ("attached", "refused")
    listed = (await h.ok(LIST, {"table": "documents", "prop": "resume"}))["records"]["results"]
    assert len(listed) == 2
    assert all(r["upload"]["url"] is None and r["link"] is None and r["properties"]["resume"] is None for r in listed)
    expires = 'query($id: ID!) { record(id: $id) { property_upload(name: "resume", expires_in: 60) { url } } }'
    assert (await h.ok(expires, {"id": saved["id"]}))["record"]["property_upload"]["url"] is None

    after = await scrape(h)
    grown = after['uploads_scans_total{outcome="infected"}'] - before.get('uploads_scans_total{outcome="infected"}', 0)
    assert grown == 2
    assert after["uploads_scanned_bytes_total"] - before.get("uploads_scanned_bytes_total", 0) == 2 * len(infected)
    assert after["uploads_scans_pending"] == 0 and after["uploads_scanner_up"] == 1
    assert after['uploads_scan_duration_seconds_count{outcome="infected"}'] >= 2


@pytest.mark.backends("moto", "seaweedfs")
async def test_clean_pdf_is_promoted_then_downloads(
    harness_factory: Any, queue_url: str, schema: Path, clamd: EmbeddedClamd
) -> None:
    h = await scanning_app(harness_factory, queue_url, schema, where(clamd))
    data = files.pdf(3)
    saved = await save(h, "documents", "resume", data, "Résumé.pdf", "application/pdf")
    assert saved["upload"]["scan_status"] == "pending"
    assert_unserved(saved, "resume")
    quarantined = await token_keys(h, saved["id"])
    assert len(quarantined) == 1 and quarantined[0].startswith("cache/")

    record = await scanned(h, saved["id"], "resume")
    upload = record["upload"]
    assert (upload["scan_status"], upload["scan_result"]) == ("clean", None)
    assert record["link"] == upload["url"] and "X-Amz-Signature" in upload["url"]  # private: a signed GET
    got = await download(upload["url"])
    assert got.status_code == 200 and got.content == data
    assert "filename*=UTF-8''R%C3%A9sum%C3%A9.pdf" in got.headers["content-disposition"]  # the server's headers
    # Promoted: the permanent object holds it, the quarantined one is gone.
    keys = await token_keys(h, saved["id"])
    assert len(keys) == 1 and not keys[0].startswith("cache/")
    row = await Upload.get(record_id=int(saved["id"]))
    assert (row.promotion, row.scan_status, row.scan_lease_until) == ("promoted", "clean", None)


@pytest.mark.backends("moto", "seaweedfs")
async def test_eicar_in_a_zip_is_found_and_a_clean_zip_is_served(
    harness_factory: Any, queue_url: str, schema: Path, clamd: EmbeddedClamd
) -> None:
    h = await scanning_app(harness_factory, queue_url, schema, where(clamd))
    infected = await save(h, "archives", "file", eicar_in_a_zip(), "reports.zip", "application/zip")
    clean = zip_with("report.pdf", files.pdf(2))
    fine = await save(h, "archives", "file", clean, "fine.zip", "application/zip")
    for saved in (infected, fine):
        assert saved["upload"]["scan_status"] == "pending"
        assert_unserved(saved, "file")  # public, and still not served
    found = await scanned(h, infected["id"], "file")
    assert (found["upload"]["scan_status"], found["upload"]["scan_result"]) == ("infected", EICAR_FOUND)
    assert_unserved(found, "file")
    assert await token_keys(h, infected["id"]) == []
    served = await scanned(h, fine["id"], "file")
    assert served["upload"]["scan_status"] == "clean"
    got = await download(served["upload"]["url"])  # public: the storage URL itself
    assert got.status_code == 200 and got.content == clean


async def test_a_scanned_image_gets_its_versions_only_once_clean(
    harness_factory: Any, queue_url: str, schema: Path, clamd: EmbeddedClamd
) -> None:
    h = await scanning_app(harness_factory, queue_url, schema, where(clamd))
    clean = await save(h, "pictures", "image", files.png(120, 90), "a.png", "image/png")
    infected = await save(h, "pictures", "image", files.png(120, 90) + EICAR, "b.png", "image/png")
    for saved in (clean, infected):
        assert [(v["name"], v["status"], v["url"]) for v in saved["upload"]["version_details"]] == [
            ("thumb", "pending", None)
        ]
    done = await scanned(h, clean["id"], "image")
    deadline = time.monotonic() + 60
    while done["upload"]["version_details"][0]["status"] == "pending":  # built after the promotion
        assert time.monotonic() < deadline, done
        await asyncio.sleep(0.05)
        done = await read(h, clean["id"], "image")
    thumb = done["upload"]["version_details"][0]
    assert thumb["status"] == "ready" and (await download(thumb["url"])).status_code == 200
    refused = await scanned(h, infected["id"], "image")
    assert refused["upload"]["scan_status"] == "infected"
    [version] = refused["upload"]["version_details"]
    assert version["status"] == "failed" and version["url"] is None
    assert version["error"] == "not built: the virus scan refused the file (infected)"
    assert await token_keys(h, infected["id"]) == []


async def test_a_file_over_the_scanners_stream_limit_fails_with_the_reason(
    harness_factory: Any, queue_url: str, schema: Path, tmp_path: Path
) -> None:
    small = started_clamd(tmp_path / "clamd", stream_max_length=MIB)  # refuses streams above 1 MiB
    try:
        h = await scanning_app(harness_factory, queue_url, schema, where(small))
        saved = await save(h, "archives", "file", os.urandom(3 * MIB), "big.bin", "application/octet-stream")
        record = await scanned(h, saved["id"], "file", within=30)
    finally:
        small.stop()
    assert (record["upload"]["scan_status"], record["upload"]["scan_result"]) == (
        "failed",
        "INSTREAM size limit exceeded",
    )
    assert_unserved(record, "file")
    assert await token_keys(h, saved["id"]) == []


async def test_a_file_changed_in_quarantine_after_its_save_is_not_served(
    harness_factory: Any, queue_url: str, schema: Path, clamd: EmbeddedClamd
) -> None:
    """The client may still write to its quarantine key until the presign expires: a scan reads only the
    bytes the save verified (by their ETag), so swapping in a clean file after saving an infected one
    gets nothing served."""
    h = await harness_factory(QUEUE_URL=queue_url, SCHEMA_DIR=str(schema), CLAMD_ADDRESS=where(clamd), **FAST)
    answer = await h.ok(
        ATTACHMENT_PRESIGN, {"table": "archives", "prop": "file", "type": "application/pdf", "name": "x.pdf"}
    )
    presigned = answer["attachment_presign_url"]
    assert (await post_form(presigned, pdf_with(EICAR), "x.pdf", "application/pdf")).status_code == 201
    variables = {"table": "archives", "prop": "file", "props": [{"name": "file", "value": presigned["url"]}]}
    saved = (await h.ok(SAVE, variables))["record_create"]
    assert (await post_form(presigned, files.pdf(), "x.pdf", "application/pdf")).status_code == 201
    services = h.app.state.services
    worker = Worker(services.settings, services.versions, services.queue, scans=services.scans)
    task = asyncio.create_task(worker.run())
    try:
        record = await scanned(h, saved["id"], "file")
    finally:
        await stop_gracefully(worker, task)
    assert (record["upload"]["scan_status"], record["upload"]["scan_result"]) == ("failed", CHANGED)
    assert_unserved(record, "file")
    assert await token_keys(h, saved["id"]) == []


async def test_the_sweep_empties_a_refused_files_quarantine_and_keeps_a_waiting_ones(
    harness_factory: Any, queue_url: str, schema: Path, clamd: EmbeddedClamd
) -> None:
    h = await harness_factory(QUEUE_URL=queue_url, SCHEMA_DIR=str(schema), CLAMD_ADDRESS=where(clamd), **FAST)
    services = h.app.state.services
    answer = await h.ok(
        ATTACHMENT_PRESIGN, {"table": "archives", "prop": "file", "type": "application/pdf", "name": "x.pdf"}
    )
    presigned = answer["attachment_presign_url"]
    assert (await post_form(presigned, pdf_with(EICAR), "x.pdf", "application/pdf")).status_code == 201
    variables = {"table": "archives", "prop": "file", "props": [{"name": "file", "value": presigned["url"]}]}
    refused = (await h.ok(SAVE, variables))["record_create"]
    waiting = await save(h, "archives", "file", files.pdf(), "w.pdf", "application/pdf")  # never scanned here
    upload = await Upload.get(record_id=int(refused["id"]))
    assert (await services.scans.process(upload.id)).outcome == "infected"
    # The presign is still valid: the client writes to its quarantine key again.
    assert (await post_form(presigned, pdf_with(EICAR), "x.pdf", "application/pdf")).status_code == 201
    assert len(await token_keys(h, refused["id"])) == 1
    sweeper = Sweeper(services.storage, services.uploads, SweepConfig(grace=timedelta(hours=1)))
    report = await sweeper.run_once(datetime.now(UTC) + timedelta(days=1))
    assert report.settled == 1
    assert await token_keys(h, refused["id"]) == []
    row = await Upload.get(id=upload.id)
    assert (row.promotion, row.scan_status, row.scan_result) == ("settled", "infected", EICAR_FOUND)
    record = await read(h, refused["id"], "file")
    assert record["upload"]["scan_status"] == "infected"
    assert_unserved(record, "file")  # settled, and still never served
    # The file still waiting for its scan keeps its quarantined object.
    assert len(await token_keys(h, waiting["id"])) == 1
    assert (await Upload.get(record_id=int(waiting["id"]))).promotion == "pending"


# --- the scanner away ----------------------------------------------------------------------


async def test_clamd_stopped_then_started_again_pending_then_clean(
    harness_factory: Any, queue_url: str, schema: Path, tmp_path: Path
) -> None:
    port = free_port()
    h = await scanning_app(harness_factory, queue_url, schema, f"127.0.0.1:{port}")  # nothing listens yet
    before = await scrape(h)
    data = files.pdf(2)
    saved = await save(h, "documents", "resume", data, "cv.pdf", "application/pdf")
    ready = await h.http.get("/readyz")
    assert ready.status_code == 200  # the API still saves files; they wait for their scan
    body = ready.json()
    assert (
        body["status"] == "ready" and body["checks"]["scanner"] == "unavailable: cannot be reached: Connection refused"
    )
    # Retried with backoff, and pending all along: never served unscanned.
    deadline = time.monotonic() + 30
    while (await scrape(h)).get('uploads_scans_total{outcome="unavailable"}', 0) - before.get(
        'uploads_scans_total{outcome="unavailable"}', 0
    ) < 2:
        assert time.monotonic() < deadline, "the worker did not retry the scan"
        record = await read(h, saved["id"], "resume")
        assert record["upload"]["scan_status"] == "pending"
        assert_unserved(record, "resume")
        await asyncio.sleep(0.1)
    metrics = await scrape(h)
    assert metrics["uploads_scanner_up"] == 0 and metrics["uploads_scans_pending"] == 1
    row = await Upload.get(record_id=int(saved["id"]))
    assert row.scan_status == "pending" and row.scan_lease_until is not None  # its retry is due then

    clamd = started_clamd(tmp_path / "clamd", port=port)
    try:
        record = await scanned(h, saved["id"], "resume", within=30)
        assert record["upload"]["scan_status"] == "clean"
        assert (await download(record["upload"]["url"])).content == data
        assert (await h.http.get("/readyz")).json()["checks"]["scanner"] == "ok"
        metrics = await scrape(h)
        assert metrics["uploads_scanner_up"] == 1 and metrics["uploads_scans_pending"] == 0
    finally:
        clamd.stop()


async def test_without_a_scanner_files_stay_pending_and_the_start_up_says_so(
    harness_factory: Any, queue_url: str, schema: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level("WARNING", "app"):
        h = await scanning_app(harness_factory, queue_url, schema, None)
    assert (
        "no virus scanner (CLAMD_ADDRESS is not set): files saved into archives.file, documents.resume,"
        " pictures.image stay pending, never served, until CLAMD_ADDRESS names a clamd"
    ) in caplog.text
    saved = await save(h, "documents", "resume", files.pdf(), "cv.pdf", "application/pdf")
    # The worker beside the API takes the job and puts it back: it stays pending.
    deadline = time.monotonic() + 30
    while await Upload.filter(record_id=int(saved["id"]), scan_lease_until=None).exists():
        assert time.monotonic() < deadline, "the worker never took the scan"
        await asyncio.sleep(0.05)
    record = await read(h, saved["id"], "resume")
    assert record["upload"]["scan_status"] == "pending"
    assert_unserved(record, "resume")
    ready = (await h.http.get("/readyz")).json()
    assert ready["status"] == "ready" and "scanner" not in ready["checks"]
    assert (await scrape(h))["uploads_scanner_up"] == 0


# --- the queue ------------------------------------------------------------------------------


async def test_a_scan_lost_between_the_commit_and_the_queue_is_sent_again(
    harness_factory: Any, queue_url: str, schema: Path, clamd: EmbeddedClamd
) -> None:
    dead = f"http://127.0.0.1:{free_port()}/123456789012/nowhere"
    down = await harness_factory(QUEUE_URL=dead, SCHEMA_DIR=str(schema), CLAMD_ADDRESS=where(clamd), **FAST)
    saved = await save(down, "documents", "resume", pdf_with(EICAR), "cv.pdf", "application/pdf")  # the send fails
    assert saved["upload"]["scan_status"] == "pending"
    live = await scanning_app(
        harness_factory, queue_url, schema, where(clamd), S3_BUCKET=down.bucket, RECONCILE_AFTER=0
    )
    record = await scanned(live, saved["id"], "resume")
    assert record["upload"]["scan_status"] == "infected"


async def test_duplicate_scan_messages_do_no_harm(
    harness_factory: Any, queue_url: str, schema: Path, clamd: EmbeddedClamd
) -> None:
    h = await harness_factory(QUEUE_URL=queue_url, SCHEMA_DIR=str(schema), CLAMD_ADDRESS=where(clamd), **FAST)
    services = h.app.state.services
    saved = await save(h, "documents", "resume", files.pdf(), "cv.pdf", "application/pdf")
    upload = await Upload.get(record_id=int(saved["id"]))
    await services.queue_scans([upload.id, upload.id])  # two more messages for the same scan
    worker = Worker(services.settings, services.versions, services.queue, scans=services.scans)
    outcomes = []
    while messages := await worker.receive():
        [message] = messages
        assert message.body == f"scan:{upload.id}"
        outcomes.append(await services.scans.process(upload.id))
        await services.queue.delete(message)
    assert [o.outcome for o in outcomes] == ["clean", "skipped", "skipped"]  # scanned once
    record = await read(h, saved["id"], "resume")
    assert record["upload"]["scan_status"] == "clean" and record["upload"]["url"] is not None


async def test_a_scan_held_by_another_worker_waits_for_its_lease(
    harness_factory: Any, queue_url: str, schema: Path, clamd: EmbeddedClamd
) -> None:
    h = await harness_factory(QUEUE_URL=queue_url, SCHEMA_DIR=str(schema), CLAMD_ADDRESS=where(clamd), **FAST)
    scans = h.app.state.services.scans
    saved = await save(h, "documents", "resume", files.pdf(), "cv.pdf", "application/pdf")
    upload = await Upload.get(record_id=int(saved["id"]))
    held_until = upload.attached_at + scans.lease if upload.attached_at else None
    await Upload.filter(id=upload.id).update(scan_lease_until=held_until)  # another worker is scanning it
    busy = await scans.process(upload.id)
    assert busy.outcome == "busy" and busy.retry_in is not None
    assert scans.lease.total_seconds() - 60 < busy.retry_in <= scans.lease.total_seconds() + 1
    assert (await read(h, saved["id"], "resume"))["upload"]["scan_status"] == "pending"
    await Upload.filter(id=upload.id).update(scan_lease_until=None)  # its lease is over
    assert (await scans.process(upload.id)).outcome == "clean"


async def test_many_scans_at_once_each_get_their_verdict(
    harness_factory: Any, queue_url: str, schema: Path, clamd: EmbeddedClamd
) -> None:
    h = await scanning_app(harness_factory, queue_url, schema, where(clamd), WORKER_CONCURRENCY=4)
    count = 16
    bodies = [pdf_with(EICAR + os.urandom(8)) if i % 2 else files.pdf() + os.urandom(64) for i in range(count)]
    saved = await asyncio.gather(
        *(save(h, "documents", "resume", body, f"f{i}.pdf", "application/pdf") for i, body in enumerate(bodies))
    )
    records = await asyncio.gather(*(scanned(h, s["id"], "resume", within=120) for s in saved))
    for i, record in enumerate(records):
        upload = record["upload"]
        if i % 2:
            assert (upload["scan_status"], upload["scan_result"], upload["url"]) == ("infected", EICAR_FOUND, None)
        else:
            assert upload["scan_status"] == "clean"
            assert (await download(upload["url"])).content == bodies[i]
    assert await Upload.filter(scan_status="pending").count() == 0
    assert await UploadVersion.all().count() == 0


# --- a large file, and the worker's memory --------------------------------------------------


def _kib(pid: int, field: str) -> int:
    line = next(x for x in Path(f"/proc/{pid}/status").read_text().splitlines() if x.startswith(field + ":"))
    return int(line.split()[1])


def reset_peak(pid: int) -> None:
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # Linux: VmHWM starts again from VmRSS


@asynccontextmanager
async def standalone_worker(h: Harness, database_url: str, schema: Path, clamd: str) -> AsyncIterator[int]:
    """`python -m app.worker` (make worker) beside the API under test; yields its pid once it serves."""
    s = h.settings
    assert s.queue_url and s.s3_endpoint_url
    port = free_port()
    env = os.environ | {
        "DATABASE_URL": database_url,
        "S3_BUCKET": s.s3_bucket,
        "S3_ENDPOINT_URL": s.s3_endpoint_url,
        "S3_REGION": s.s3_region,
        "S3_PUBLIC_READ": s.s3_public_read,
        "S3_CONDITIONAL_COPY": s.s3_conditional_copy,
        "AWS_ACCESS_KEY_ID": h.server.access_key_id,
        "AWS_SECRET_ACCESS_KEY": h.server.secret_access_key,
        "QUEUE_URL": s.queue_url,
        "SCHEMA_DIR": str(schema),
        "CLAMD_ADDRESS": clamd,
        "QUEUE_WAIT_SECONDS": "1",
        "WORKER_CONCURRENCY": "1",
        "WORKER_METRICS_PORT": str(port),
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "app.worker", cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
            deadline = time.monotonic() + 30
            while True:
                assert proc.returncode is None, "the worker exited"
                try:
                    await client.get("/healthz")
                    break
                except httpx.TransportError:
                    assert time.monotonic() < deadline, "the worker's /healthz never answered"
                    await asyncio.sleep(0.1)
        yield proc.pid
    finally:
        if proc.returncode is None:
            proc.terminate()
            await asyncio.wait_for(proc.wait(), 30)


@pytest.mark.backends("moto", "seaweedfs")
async def test_a_50_mb_file_is_streamed_with_the_workers_memory_bounded(
    harness_factory: Any, queue_url: str, schema: Path, clamd: EmbeddedClamd, database_url: str
) -> None:
    h = await harness_factory(QUEUE_URL=queue_url, SCHEMA_DIR=str(schema), CLAMD_ADDRESS=where(clamd), **FAST)
    big = os.urandom(50 * MIB)
    async with standalone_worker(h, database_url, schema, where(clamd)) as pid:
        # A first scan, as any worker has done before: the connections and buffers it keeps are not this file's.
        warm = await save(h, "archives", "file", files.pdf(), "warm.pdf", "application/pdf")
        assert (await scanned(h, warm["id"], "file"))["upload"]["scan_status"] == "clean"
        before = _kib(pid, "VmRSS")
        reset_peak(pid)  # VmHWM counts from here
        saved = await save(h, "archives", "file", big, "big.bin", "application/octet-stream")
        record = await scanned(h, saved["id"], "file", within=180)
        peak = _kib(pid, "VmHWM")
    assert record["upload"]["scan_status"] == "clean" and record["upload"]["size"] == len(big)
    got = await download(record["upload"]["url"])
    assert hashlib.sha256(got.content).digest() == hashlib.sha256(big).digest()
    growth_mib = (peak - before) / 1024
    print(f"worker RSS {before / 1024:.1f} MiB before, peak {peak / 1024:.1f} MiB scanning 50 MiB (+{growth_mib:.1f})")
    assert growth_mib < 16, f"the worker's peak RSS grew by {growth_mib:.1f} MiB while scanning 50 MiB"


# --- make run -------------------------------------------------------------------------------


def test_what_the_start_up_says_about_scanning(tmp_path: Path) -> None:
    shipped = load_tables(ROOT / "app" / "schema")
    base = {"S3_BUCKET": "b"}
    with_all = Settings.from_env(base | {"CLAMD_ADDRESS": "10.0.0.5:3310", "QUEUE_URL": "http://q/1/jobs"})
    assert scanner_line(with_all.with_changes(run_worker=True), shipped) == (
        "clamd at 10.0.0.5:3310; the worker beside the API scans files saved into documents.resume"
    )
    assert scanner_line(with_all, shipped) == (
        "clamd at 10.0.0.5:3310; a standalone worker (make worker) scans files saved into documents.resume"
    )
    no_queue = Settings.from_env(base | {"CLAMD_ADDRESS": "/run/clamav/clamd.ctl"})
    assert scanner_line(no_queue, shipped) == (
        "clamd at /run/clamav/clamd.ctl; files saved into documents.resume stay pending: no queue (QUEUE_URL)"
        " carries their scans"
    )
    assert notice(no_queue, shipped) == (
        logging.WARNING,
        "QUEUE_URL is not set: files saved into documents.resume stay pending, never served, until a queue and a"
        " worker scan them",
    )
    assert notice(with_all, shipped) == (
        logging.INFO,
        "files saved into documents.resume are scanned by clamd at 10.0.0.5:3310",
    )
    unscanned = {name: t for name, t in shipped.items() if name != "documents"}
    assert scanner_line(with_all, unscanned) is None and notice(with_all, unscanned) is None


def test_make_run_without_clamd_says_scanned_files_stay_pending(tmp_path: Path) -> None:
    """`make run` on a machine without clamav-daemon (clamd searched for in an empty folder): it starts,
    and says plainly, in its banner and its log, that résumés stay pending and unserved."""
    port, storage_port = free_port(), free_port()
    env = {
        k: v for k, v in os.environ.items() if k not in ("S3_ENDPOINT_URL", "S3_BUCKET", "QUEUE_URL", "CLAMD_ADDRESS")
    } | {
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "STORAGE_PORT": str(storage_port),
        "EMBEDDED_DIR": str(tmp_path / "embedded"),
        "DATABASE_URL": f"sqlite://{tmp_path / 'run.sqlite3'}",
        "LOG_LEVEL": "WARNING",
    }
    code = f"import app.embedded.clamd as c; c._SEARCH_PATH = {str(tmp_path)!r}; from app.run import main; main()"
    log_path = tmp_path / "run.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-c", code],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = LiveServer(
        f"http://127.0.0.1:{port}", f"http://127.0.0.1:{storage_port}", process, log_path, tmp_path / "embedded"
    )
    try:
        deadline = time.monotonic() + 60
        while "Virus scanner:" not in log_path.read_text(errors="replace"):
            assert process.poll() is None and time.monotonic() < deadline, log_path.read_text(errors="replace")
            time.sleep(0.1)
        text = log_path.read_text(errors="replace")
    finally:
        stop_live_server(server)
    assert "no virus scanner: clamd is not installed (Debian package clamav-daemon" in text
    assert (
        "no virus scanner (CLAMD_ADDRESS is not set): files saved into documents.resume stay pending, never served,"
        " until CLAMD_ADDRESS names a clamd"
    ) in text
    assert (
        "  Virus scanner:            none: files saved into documents.resume stay pending, never served, until"
        " CLAMD_ADDRESS names a clamd"
    ) in text
