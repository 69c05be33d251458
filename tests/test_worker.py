"""Image versions end to end: save through GraphQL, the real worker over moto's SQS and S3, read the
versions back through GraphQL and decode the bytes that storage serves."""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import signal
import socket
import struct
import subprocess
import sys
import time
import uuid
import zlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image
from prometheus_client.parser import text_string_to_metric_families

from app import worker as worker_module
from app.models import Upload, UploadVersion
from app.queue import create_queue
from app.settings import ROOT, Settings
from app.worker import Worker, stop_gracefully
from tests import files
from tests.conftest import Harness, MotoServer, free_port
from tests.gql import RECORD, RECORD_CREATE, RECORD_DELETE, RECORD_UPDATE
from tests.test_flow import upload_photo

FAST = {
    "QUEUE_WAIT_SECONDS": 1,
    "VERSION_LEASE_SECONDS": 3,
    "VERSION_RETRY_BASE_SECONDS": 0,
    "RECONCILE_INTERVAL": 1,
    "RECONCILE_AFTER": 600,  # off unless a test turns it on
}
CREDS = Settings.from_env({"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "S3_BUCKET": "q"})


# --- images made here ---------------------------------------------------------------------


def _noise(mode: str, size: tuple[int, int], seed: int = 1) -> Image.Image:
    import random

    w, h = size
    return Image.frombytes(mode, size, random.Random(seed).randbytes(w * h * len(mode)))


def jpeg_rotated() -> bytes:
    """Stored 120x80 with EXIF orientation 6: upright it is 80x120."""
    image = _noise("RGB", (120, 80))
    exif = Image.Exif()
    exif[0x0112] = 6
    exif[0x010F] = "SecretCam"  # metadata that must not reach the versions
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif.tobytes())
    return out.getvalue()


def animated_gif() -> bytes:
    frames = [_noise("RGB", (60, 40), seed).convert("P") for seed in (1, 2, 3)]
    out = io.BytesIO()
    frames[0].save(out, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    return out.getvalue()


def png_bomb() -> bytes:
    """A 2 KB PNG whose header declares 30000x30000 pixels."""
    ihdr = struct.pack(">IIBBBBB", 30000, 30000, 8, 2, 0, 0, 0)
    chunk = struct.pack(">I", len(ihdr)) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    idat = zlib.compress(b"\x00" * 4000)
    idat_chunk = struct.pack(">I", len(idat)) + b"IDAT" + idat + struct.pack(">I", zlib.crc32(b"IDAT" + idat))
    return files.padded(b"\x89PNG\r\n\x1a\n" + chunk + idat_chunk)


def corrupt_jpeg() -> bytes:
    return files.padded(b"\xff\xd8\xff\xe0" + b"\x00\x10JFIF\x00" + bytes(range(256)) * 4)


# --- helpers ------------------------------------------------------------------------------


@pytest.fixture
async def queue_url(moto: MotoServer) -> str:
    return await create_queue(CREDS, moto.url, f"versions-{uuid.uuid4().hex[:8]}")


@contextlib.asynccontextmanager
async def running_worker(h: Harness) -> AsyncIterator[Worker]:
    services = h.app.state.services
    worker = Worker(services.settings, services.versions, services.queue)
    task = asyncio.create_task(worker.run())
    try:
        yield worker
    finally:
        await stop_gracefully(worker, task)


async def save_image(h: Harness, data: bytes, name: str, ctype: str) -> dict[str, Any]:
    url = await upload_photo(h, data, name, ctype)
    props = [{"name": "image", "value": url}]
    created: dict[str, Any] = (await h.ok(RECORD_CREATE, {"table": "photos", "prop": "image", "props": props}))[
        "record_create"
    ]
    return created


async def settled(h: Harness, record_id: str, within: float = 30) -> dict[str, Any]:
    """The record's upload once no version is pending any more."""
    deadline = time.monotonic() + within
    while True:
        upload: dict[str, Any] = (await h.ok(RECORD, {"id": record_id, "prop": "image"}))["record"]["upload"]
        if all(v["status"] != "pending" for v in upload["version_details"]):
            return upload
        assert time.monotonic() < deadline, f"versions still pending: {upload['version_details']}"
        await asyncio.sleep(0.1)


async def fetch(url: str) -> httpx.Response:
    async with httpx.AsyncClient() as client:
        response = await client.get(url)
    assert response.status_code == 200, response.text
    return response


async def upload_id(record: dict[str, Any]) -> str:
    """The queue message for a record's image: its upload id, as the API sends it."""
    upload = await Upload.get(record_id=int(record["id"]), status="attached")
    return str(upload.id)


def details(upload: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {v["name"]: v for v in upload["version_details"]}


# --- tests --------------------------------------------------------------------------------


def _metric(response: Any, series: str) -> float:
    for line in response.text.splitlines():
        if line.startswith(series + " "):
            return float(line.split()[-1])
    return 0.0


async def test_versions_of_real_images(harness_factory: Any, queue_url: str) -> None:
    h = await harness_factory(QUEUE_URL=queue_url, **FAST)
    saved = {
        "jpeg": await save_image(h, jpeg_rotated(), "rotated.jpg", "image/jpeg"),
        "png": await save_image(h, files.png(64, 48), "alpha.png", "image/png"),
        "gif": await save_image(h, animated_gif(), "anim.gif", "image/gif"),
        "bomb": await save_image(h, png_bomb(), "bomb.png", "image/png"),
        "corrupt": await save_image(h, corrupt_jpeg(), "broken.jpg", "image/jpeg"),
    }
    assert all(v["status"] == "pending" for s in saved.values() for v in s["upload"]["version_details"])
    failures_before = _metric(
        await h.http.get("/metrics"), 'uploads_version_job_failures_total{final="true",reason="failed"}'
    )
    async with running_worker(h):
        done = {name: await settled(h, s["id"]) for name, s in saved.items()}
    # The worker reports its jobs to /metrics: the bomb and the corrupt file are final failures.
    failures = _metric(await h.http.get("/metrics"), 'uploads_version_job_failures_total{final="true",reason="failed"}')
    assert failures - failures_before == 2

    # JPEG with EXIF orientation 6: upright 80x120, metadata stripped.
    jpeg = done["jpeg"]
    assert (jpeg["width"], jpeg["height"]) == (80, 120)
    v = details(jpeg)
    assert {n: (d["status"], d["width"], d["height"], d["format"]) for n, d in v.items()} == {
        "thumb": ("ready", 200, 200, "webp"),
        "medium": ("ready", 800, 1200, "jpeg"),
        "large": ("ready", 80, 120, "webp"),  # without_enlargement
    }
    large = await fetch(v["large"]["url"])
    assert large.headers["content-type"] == "image/webp"
    assert large.headers["cache-control"] == "max-age=315576000, public"
    assert int(v["large"]["size"]) == len(large.content)
    decoded = Image.open(io.BytesIO(large.content))
    assert (decoded.format, decoded.size) == ("WEBP", (80, 120))
    medium = await fetch(v["medium"]["url"])
    decoded = Image.open(io.BytesIO(medium.content))
    assert (decoded.format, decoded.size) == ("JPEG", (800, 1200))
    assert b"SecretCam" not in medium.content and not decoded.getexif()
    assert jpeg["versions"] == {name: d["url"] for name, d in v.items()}
    url_query = 'query($id: ID!) { record(id: $id) { property_upload(name: "image") { url(version: "thumb") } } }'
    thumb_url = (await h.ok(url_query, {"id": saved["jpeg"]["id"]}))["record"]["property_upload"]["url"]
    assert thumb_url == v["thumb"]["url"] and thumb_url.endswith(".webp")

    # PNG with alpha: WebP keeps transparency, JPEG is flattened.
    v = details(done["png"])
    thumb = Image.open(io.BytesIO((await fetch(v["thumb"]["url"])).content))
    assert thumb.format == "WEBP" and thumb.mode == "RGBA" and thumb.size == (200, 200)
    medium_png = Image.open(io.BytesIO((await fetch(v["medium"]["url"])).content))
    assert medium_png.mode == "RGB" and medium_png.size == (800, 600)
    assert (done["png"]["width"], done["png"]["height"]) == (64, 48)

    # Animated GIF: the first frame, as a still.
    v = details(done["gif"])
    assert {d["status"] for d in v.values()} == {"ready"}
    large_gif = Image.open(io.BytesIO((await fetch(v["large"]["url"])).content))
    assert large_gif.size == (60, 40) and getattr(large_gif, "n_frames", 1) == 1

    # Decompression bomb and corrupt file: failed, with the reason, and no URL.
    for name, reason in (("bomb", "over the limit"), ("corrupt", "not a decodable image")):
        for d in done[name]["version_details"]:
            assert d["status"] == "failed" and reason in d["error"] and d["url"] is None
        assert done[name]["versions"] == {}


def _samples(response: Any, name: str) -> dict[str, float]:
    """The samples of one unlabelled histogram: `count`, `sum` and each bucket by its `le`."""
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            if sample.name == f"{name}_count":
                out["count"] = sample.value
            elif sample.name == f"{name}_sum":
                out["sum"] = sample.value
            elif sample.name == f"{name}_bucket":
                out[sample.labels["le"]] = sample.value
    return out


async def test_queue_lag_is_observed_when_the_worker_takes_a_job(harness_factory: Any, queue_url: str) -> None:
    h = await harness_factory(QUEUE_URL=queue_url, **FAST)
    before = _samples(await h.http.get("/metrics"), "uploads_queue_lag_seconds")
    started = time.monotonic()
    created = [await save_image(h, files.png(70 + i, 50), f"lag{i}.png", "image/png") for i in range(3)]
    await asyncio.sleep(0.6)  # no worker yet: every job waits in the queue at least this long
    async with running_worker(h):
        for c in created:
            await settled(h, c["id"])
    elapsed = time.monotonic() - started
    after = _samples(await h.http.get("/metrics"), "uploads_queue_lag_seconds")
    grown = {k: after[k] - before.get(k, 0.0) for k in after}
    assert grown["count"] == 3  # one observation per job taken, from SQS's SentTimestamp
    assert grown["0.5"] == 0  # each waited at least the 0.6 s before the worker started...
    assert grown["15.0"] == 3  # ...and no longer than the test ran
    assert 3 * 0.6 <= grown["sum"] <= 3 * elapsed


async def test_redelivered_job_is_harmless(harness_factory: Any, queue_url: str) -> None:
    h = await harness_factory(QUEUE_URL=queue_url, **FAST)
    created = await save_image(h, files.jpeg(), "a.jpg", "image/jpeg")
    async with running_worker(h):
        before = await settled(h, created["id"])
        keys = [k for k in await h.keys() if "/versions/" in k]
        stamps = {k: (await h.s3.head_object(Bucket=h.bucket, Key=k))["ETag"] for k in keys}
        await h.app.state.services.queue.send([await upload_id(created)] * 2)
        await asyncio.sleep(2.5)
        after = await settled(h, created["id"])
    assert after == before and len(keys) == 3
    assert {k: (await h.s3.head_object(Bucket=h.bucket, Key=k))["ETag"] for k in keys} == stamps
    assert {v.attempts for v in await UploadVersion.all()} == {1}  # claimed once each, never rebuilt


async def test_parallel_workers_build_each_version_once(harness_factory: Any, queue_url: str) -> None:
    h = await harness_factory(QUEUE_URL=queue_url, **FAST)
    created = [await save_image(h, files.png(80 + i, 60), f"p{i}.png", "image/png") for i in range(4)]
    ids = [await upload_id(c) for c in created]
    await h.app.state.services.queue.send(ids * 2)  # every job twice: duplicates race between workers
    async with running_worker(h), running_worker(h), running_worker(h):
        results = [await settled(h, c["id"]) for c in created]
    assert all(d["status"] == "ready" for r in results for d in r["version_details"])
    versions = await UploadVersion.all()
    assert len(versions) == 12 and {v.attempts for v in versions} == {1}


async def test_versions_removed_on_replace_and_delete(harness_factory: Any, queue_url: str) -> None:
    h = await harness_factory(QUEUE_URL=queue_url, **FAST)
    created = await save_image(h, files.png(), "one.png", "image/png")
    async with running_worker(h):
        first = await settled(h, created["id"])
        first_keys = set(await h.keys())
        assert len(first_keys) == 4  # the original and three versions
        url = await upload_photo(h, files.jpeg(), "two.jpg", "image/jpeg")
        props = [{"name": "image", "value": url}]
        await h.ok(RECORD_UPDATE, {"id": created["id"], "prop": "image", "props": props})
        second = await settled(h, created["id"])
    assert {d["status"] for d in second["version_details"]} == {"ready"}
    keys = set(await h.keys())
    assert len(keys) == 4 and not keys & first_keys
    for d in first["version_details"]:
        async with httpx.AsyncClient() as client:
            assert (await client.get(d["url"])).status_code == 404
    # A deleted record keeps its files until it is purged (30 days, restorable until then).
    await h.ok(RECORD_DELETE, {"id": created["id"]})
    assert set(await h.keys()) == keys
    await h.app.state.services.records.purge_deleted(now=datetime.now(UTC) + timedelta(days=31))
    assert await h.keys() == []


async def test_missing_original_is_retried_then_fails_with_reason(harness_factory: Any, queue_url: str) -> None:
    h = await harness_factory(QUEUE_URL=queue_url, VERSION_MAX_ATTEMPTS=3, **FAST)
    created = await save_image(h, files.png(), "gone.png", "image/png")
    other = await save_image(h, files.png(70, 50), "fine.png", "image/png")
    original = [k for k in await h.keys() if k.endswith("gone.png")]
    await h.s3.delete_object(Bucket=h.bucket, Key=original[0])
    started = datetime.now(UTC)
    async with running_worker(h):
        gone = await settled(h, created["id"])
        fine = await settled(h, other["id"])
    for d in gone["version_details"]:
        assert d["status"] == "failed"
        assert d["error"].startswith("gave up after 3 attempts: could not read the original")
    assert {d["status"] for d in fine["version_details"]} == {"ready"}  # a failing job blocks nothing
    # Every version's row says when its status last changed, failed and ready alike.
    rows = await UploadVersion.filter(upload__record_id__in=[int(created["id"]), int(other["id"])])
    assert len(rows) == 6
    assert all(row.updated_at >= started for row in rows)


async def test_queue_down_at_save_then_reconciler_builds(harness_factory: Any, queue_url: str) -> None:
    dead = f"http://127.0.0.1:{free_port()}/123456789012/nowhere"
    h = await harness_factory(QUEUE_URL=dead, **FAST)
    created = await save_image(h, files.png(), "a.png", "image/png")  # the send fails: the save does not
    assert {d["status"] for d in created["upload"]["version_details"]} == {"pending"}
    # A worker beside an API on the live queue (RUN_WORKER: the lifespan starts it), same database and bucket.
    live = await harness_factory(
        QUEUE_URL=queue_url, S3_BUCKET=h.bucket, RUN_WORKER="true", **(FAST | {"RECONCILE_AFTER": 0})
    )
    upload = await settled(live, created["id"])
    assert {d["status"] for d in upload["version_details"]} == {"ready"}


async def test_reconciler_resends_lost_messages_not_a_backlog(harness_factory: Any, queue_url: str) -> None:
    # B's message is lost (the queue is down when it is saved); C1..C3 wait in the queue behind it.
    dead = f"http://127.0.0.1:{free_port()}/123456789012/nowhere"
    down = await harness_factory(QUEUE_URL=dead, **FAST)
    h = await harness_factory(QUEUE_URL=queue_url, S3_BUCKET=down.bucket, **(FAST | {"RECONCILE_AFTER": 0}))
    lost = await save_image(down, files.png(71, 50), "lost.png", "image/png")
    queued = [await save_image(h, files.png(72 + i, 50), f"c{i}.png", "image/png") for i in range(3)]
    services = h.app.state.services
    worker = Worker(services.settings, services.versions, services.queue)
    # Not polled yet: a lost message and a waiting one look the same, so nothing is re-sent.
    assert await worker.reconcile() == 0 and worker.caught_up_to is None
    [first] = await worker.receive()
    assert first.body == await upload_id(queued[0]) and worker.caught_up_to == first.sent_at
    await worker.handle(first)
    # The queue is consumed up to C1's send: B (saved before it) is re-sent; C2 and C3, saved after
    # it and still queued, are not (the old rule, RECONCILE_AFTER before now, re-sent them too).
    assert await worker.reconcile() == 1
    taken = []
    while messages := await worker.receive():
        taken.append(messages[0].body)
        await worker.handle(messages[0])
    assert sorted(taken) == sorted([await upload_id(r) for r in (lost, queued[1], queued[2])])  # no duplicates
    for record in (lost, *queued):
        assert {d["status"] for d in (await settled(h, record["id"]))["version_details"]} == {"ready"}
    assert await worker.reconcile() == 0
    assert worker.caught_up_to is not None and worker.caught_up_to > first.sent_at  # the last poll was empty


def _worker_env(h: Harness, database_url: str, schema_dir: Path) -> dict[str, str]:
    s = h.settings
    assert s.queue_url and s.s3_endpoint_url
    return os.environ | {
        "DATABASE_URL": database_url,
        "S3_BUCKET": s.s3_bucket,
        "S3_ENDPOINT_URL": s.s3_endpoint_url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "QUEUE_URL": s.queue_url,
        "SCHEMA_DIR": str(schema_dir),
        "VERSION_LEASE_SECONDS": "3",
        "QUEUE_WAIT_SECONDS": "1",
        "RECONCILE_AFTER": "600",
    }


SLOW_TABLE = """
name: photos
properties:
  - name: image
    type: image
    options:
      content_length: { gte: 1, lte: 10240 }
      versions:
"""


def slow_schema(tmp_path: Path, size: int, blur: int) -> Path:
    """A `photos` table whose three versions are big blurred canvases: jobs last long enough to watch."""
    schema = tmp_path / "schema"
    schema.mkdir()
    versions = "".join(
        f"        - {{name: v{i}, resize: {{width: {size}, height: {size}}}, manipulate: {{blur: {blur}}}}}\n"
        for i in range(3)
    )
    (schema / "photos.yml").write_text(SLOW_TABLE + versions)
    return schema


async def leased_uploads() -> set[int]:
    """Uploads that a worker is building right now: they have a pending version under lease."""
    rows = await UploadVersion.filter(lease_until__not_isnull=True, status="pending").values_list(
        "upload_id", flat=True
    )
    return {int(str(r)) for r in rows}


async def until_leased(count: int, *, within: float = 60) -> None:
    deadline = time.monotonic() + within
    while len(await leased_uploads()) < count:
        assert time.monotonic() < deadline, f"never saw {count} uploads in hand at once"
        await asyncio.sleep(0.02)


# Jobs last seconds here; a lease that expired mid-job would let a second consumer take it again.
SLOW = FAST | {"VERSION_LEASE_SECONDS": 120, "WORKER_CONCURRENCY": 2}


async def test_one_worker_builds_as_many_images_at_once_as_its_concurrency(
    harness_factory: Any, queue_url: str, tmp_path: Path
) -> None:
    h = await harness_factory(QUEUE_URL=queue_url, SCHEMA_DIR=str(slow_schema(tmp_path, 1000, 8)), **SLOW)
    created = [await save_image(h, files.png(80 + i, 60), f"s{i}.png", "image/png") for i in range(3)]
    most = 0
    async with running_worker(h):
        deadline = time.monotonic() + 120
        while await UploadVersion.filter(status="pending").exists():
            assert time.monotonic() < deadline, "versions still pending"
            most = max(most, len(await leased_uploads()))
            await asyncio.sleep(0.02)
        results = [await settled(h, c["id"]) for c in created]
    assert most == 2  # two images in hand at once, never more than WORKER_CONCURRENCY
    assert all(d["status"] == "ready" and d["width"] == 1000 for r in results for d in r["version_details"])
    assert {v.attempts for v in await UploadVersion.all()} == {1}


async def test_graceful_stop_finishes_every_job_in_hand_and_takes_no_more(
    harness_factory: Any, queue_url: str, tmp_path: Path
) -> None:
    h = await harness_factory(QUEUE_URL=queue_url, SCHEMA_DIR=str(slow_schema(tmp_path, 1000, 8)), **SLOW)
    created = [await save_image(h, files.png(80 + i, 60), f"g{i}.png", "image/png") for i in range(3)]
    services = h.app.state.services
    worker = Worker(services.settings, services.versions, services.queue)
    task = asyncio.create_task(worker.run())
    await until_leased(2)
    in_hand = await leased_uploads()
    await stop_gracefully(worker, task)
    assert task.done()
    for c in created:
        upload = await Upload.get(record_id=int(c["id"]), status="attached")
        versions = await UploadVersion.filter(upload_id=upload.id)
        if upload.id in in_hand:  # finished, not abandoned
            assert {(v.status, v.attempts) for v in versions} == {("ready", 1)}
        else:  # still queued: nobody claimed it after the stop
            assert {(v.status, v.attempts, v.lease_until) for v in versions} == {("pending", 0, None)}


async def test_stop_past_the_grace_period_hands_every_job_back(
    harness_factory: Any, queue_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(worker_module, "SHUTDOWN_GRACE_SECONDS", 0.1)
    h = await harness_factory(QUEUE_URL=queue_url, SCHEMA_DIR=str(slow_schema(tmp_path, 1000, 8)), **SLOW)
    for i in range(2):
        await save_image(h, files.png(80 + i, 60), f"c{i}.png", "image/png")
    services = h.app.state.services
    worker = Worker(services.settings, services.versions, services.queue)
    task = asyncio.create_task(worker.run())
    await until_leased(2)
    await stop_gracefully(worker, task)
    assert task.cancelled()
    # Both jobs were cancelled: their leases are released at once (not left to expire)...
    pending = await UploadVersion.filter(status="pending")
    assert len({v.upload_id for v in pending}) == 2 and all(v.lease_until is None for v in pending)
    # ...and their messages are visible again, so the next worker finishes them.
    async with running_worker(h):
        deadline = time.monotonic() + 120
        while await UploadVersion.filter(status="pending").exists():
            assert time.monotonic() < deadline, "versions still pending"
            await asyncio.sleep(0.1)
    assert {v.status for v in await UploadVersion.all()} == {"ready"}


async def test_worker_killed_mid_job_loses_nothing(
    harness_factory: Any, queue_url: str, database_url: str, tmp_path: Path
) -> None:
    # Heavy versions (big blurred canvases) so the jobs last long enough to be killed in the middle;
    # two images and two consumers, so the kill interrupts two jobs at once.
    schema = slow_schema(tmp_path, 1200, 10)
    h = await harness_factory(QUEUE_URL=queue_url, SCHEMA_DIR=str(schema), **FAST)
    created = [await save_image(h, files.png(80 + i, 60), f"slow{i}.png", "image/png") for i in range(2)]
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "app.worker",
        cwd=ROOT,
        env=_worker_env(h, database_url, schema) | {"WORKER_CONCURRENCY": "2"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        await until_leased(2)
        assert proc.returncode is None
        proc.send_signal(signal.SIGKILL)
        assert await proc.wait() == -signal.SIGKILL
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    interrupted = await UploadVersion.filter(status="pending").values_list("upload_id", flat=True)
    assert len(set(interrupted)) == 2  # killed while holding leases on both images, with work left
    # The messages reappear once their visibility timeout (= the lease) passes; another worker finishes.
    async with running_worker(h):
        uploads = [await settled(h, c["id"], within=120) for c in created]
    assert {d["status"] for u in uploads for d in u["version_details"]} == {"ready"}
    assert {(d["width"], d["height"]) for u in uploads for d in u["version_details"]} == {(1200, 1200)}


async def test_standalone_worker_serves_its_metrics(harness_factory: Any, queue_url: str, database_url: str) -> None:
    h = await harness_factory(QUEUE_URL=queue_url, **FAST)
    created = await save_image(h, files.png(90, 60), "scraped.png", "image/png")
    port = free_port()
    env = _worker_env(h, database_url, ROOT / "app" / "schema") | {"WORKER_METRICS_PORT": str(port)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "app.worker", cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=base, timeout=5) as client:
            deadline = time.monotonic() + 30
            while True:
                assert proc.returncode is None, "the worker exited"
                try:
                    health = await client.get("/healthz")
                    break
                except httpx.TransportError:
                    assert time.monotonic() < deadline, "the worker's /healthz never answered"
                    await asyncio.sleep(0.1)
            assert (health.status_code, health.json()) == (200, {"status": "ok"})
            upload = await settled(h, created["id"])  # built by the standalone worker: none runs here
            assert {d["status"] for d in upload["version_details"]} == {"ready"}
            # The job's duration is observed once its versions are committed: the versions can read
            # ready a moment before the worker's registry counts the job.
            deadline = time.monotonic() + 10
            while True:
                scraped = await client.get("/metrics")
                done = _metric(scraped, 'uploads_version_job_duration_seconds_count{outcome="ok"}')
                if done or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.05)
            assert scraped.status_code == 200 and scraped.headers["content-type"].startswith("text/plain; version=")
            # The worker process's own registry: exactly the one job it ran, and its queue lag.
            assert _samples(scraped, "uploads_queue_lag_seconds")["count"] == 1
            assert _metric(scraped, 'uploads_version_job_duration_seconds_count{outcome="ok"}') == 1
            assert (await client.get("/nope")).status_code == 404
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 30) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_standalone_worker_refuses_a_taken_metrics_port(queue_url: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = os.environ | {"QUEUE_URL": queue_url, "WORKER_METRICS_PORT": str(port), "S3_BUCKET": "q"}
        result = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "app.worker", cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        _, stderr = await asyncio.wait_for(result.communicate(), 30)
    assert result.returncode == 1
    assert f"WORKER_METRICS_PORT={port}: cannot listen on 127.0.0.1:{port}" in stderr.decode()
