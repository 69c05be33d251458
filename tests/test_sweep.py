"""The clean-up sweep, on moto and SeaweedFS: orphans (never saved) are removed after expiry plus grace,
including objects a hostile client added under an issued prefix; a saved upload's quarantine is emptied
once its presign expired; stale multipart uploads are aborted; discarded files are deleted again; a
saved file is never removed."""

from __future__ import annotations

import asyncio
import os
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from app.models import Upload
from app.settings import ROOT, Settings
from app.sweep import SweepConfig, Sweeper, run_periodically, sweeper_for
from tests import files
from tests.conftest import Harness, post_form, uploaded_key
from tests.gql import ATTACHMENT_PRESIGN, IMAGE_PRESIGN, RECORD
from tests.large import MIB, MP_CREATE, MP_SIGN, PUT_PRESIGN, SAVE, blob, download, put, record_vars, schema_dir

LATER = timedelta(days=3)  # past every expiry (multipart: one day) plus the grace

pytestmark = pytest.mark.backends("moto", "seaweedfs")


@pytest.fixture
async def big(harness_factory: Any, tmp_path: Path) -> Harness:
    harness: Harness = await harness_factory(SCHEMA_DIR=schema_dir(tmp_path))
    return harness


def sweeper(h: Harness) -> Sweeper:
    services = h.app.state.services
    return Sweeper(services.storage, services.uploads, SweepConfig(grace=timedelta(hours=1)))


async def test_orphans_go_confirmed_files_stay(big: Harness) -> None:
    h = big
    # A confirmed upload.
    data = files.png()
    kept = (await h.ok(IMAGE_PRESIGN, {"table": "photos", "prop": "image", "type": "image/png"}))["image_presign_url"]
    assert (await post_form(kept, data, "kept.png", "image/png")).status_code == 201
    saved = (await h.ok(SAVE, record_vars("photos", "image", uploaded_key(kept, "kept.png"))))["record_create"]

    # A POST presign never saved, with two extra objects a hostile client put under its prefix
    # (the policy's key starts-with allows any name there).
    orphan = (await h.ok(ATTACHMENT_PRESIGN, {"table": "documents", "prop": "resume", "type": "application/pdf"}))[
        "attachment_presign_url"
    ]
    for name in ("cv.pdf", "extra-1.pdf", "extra-2.pdf"):
        assert (await post_form(orphan, files.pdf(), name, "application/pdf")).status_code == 201
    # A PUT presign never saved.
    put_vars = {
        "table": "photos",
        "prop": "image",
        "put": {"file_name": "p.png", "content_type": "image/png", "size": len(data)},
    }
    p = (await h.ok(PUT_PRESIGN, put_vars))["property_upload_presigned_url"]
    assert (await put(p["upload_url"], data, p["headers"])).status_code == 200
    assert len(await h.keys()) == 5

    # Not yet expired: nothing happens.
    report = await sweeper(h).run_once()
    assert report.expired == 0 and len(await h.keys()) == 5

    report = await sweeper(h).run_once(datetime.now(UTC) + LATER)
    assert report.expired == 2 and report.objects_deleted == 4 and report.settled == 1
    assert await h.keys() == [uploaded_key(kept, "kept.png").removeprefix("cache/")]
    record = (await h.ok(RECORD, {"id": saved["id"], "prop": "image"}))["record"]
    assert (await download(record["upload"]["url"])).content == data
    statuses = {u.status for u in await Upload.all()}
    assert statuses == {"attached", "expired"}
    # An expired upload can no longer be saved.
    assert await h.error_code(SAVE, record_vars("photos", "image", p["key"])) == "UPLOAD_EXPIRED"
    # A second pass finds nothing more to do.
    again = await sweeper(h).run_once(datetime.now(UTC) + LATER)
    assert (again.expired, again.settled, again.objects_deleted) == (0, 0, 0)


async def test_stale_multipart_upload_is_aborted(big: Harness) -> None:
    h = big
    variables = {"table": "videos", "prop": "clip", "name": "a.mp4", "type": "video/mp4", "size": 6 * MIB}
    started = (await h.ok(MP_CREATE, variables))["multipart_upload_create"]
    ids = {"id": started["upload_id"], "key": started["key"]}
    url = (await h.ok(MP_SIGN, ids | {"parts": [1]}))["multipart_upload_sign_parts"][0]["url"]
    assert (await put(url, blob(5 * MIB), {})).status_code == 200
    assert len((await h.s3.list_multipart_uploads(Bucket=h.bucket)).get("Uploads", [])) == 1

    # A day later it is still open (multipart uploads live a day); after expiry plus grace it goes.
    assert (await sweeper(h).run_once(datetime.now(UTC) + timedelta(hours=12))).aborted == 0
    report = await sweeper(h).run_once(datetime.now(UTC) + LATER)
    assert report.aborted == 1 and report.expired == 1
    assert (await h.s3.list_multipart_uploads(Bucket=h.bucket)).get("Uploads", []) == []
    assert await h.error_code(MP_SIGN, ids | {"parts": [2]}) == "UPLOAD_EXPIRED"


async def test_discarded_files_are_deleted_again(h: Harness) -> None:
    data = files.png()
    presigned = (await h.ok(IMAGE_PRESIGN, {"table": "photos", "prop": "image", "type": "image/png"}))[
        "image_presign_url"
    ]
    assert (await post_form(presigned, data, "a.png", "image/png")).status_code == 201
    key = uploaded_key(presigned, "a.png").removeprefix("cache/")
    await h.ok(SAVE, record_vars("photos", "image", uploaded_key(presigned, "a.png")))
    # As left behind when the record was deleted while storage was down: released, object still there.
    await Upload.filter(key=key).update(status="discarded", record_id=None)
    assert await h.keys() == [key]
    report = await sweeper(h).run_once()
    assert report.discarded == 1
    assert await h.keys() == []
    assert (await Upload.get(key=key)).status == "deleted"


async def test_quarantine_leftovers_of_a_saved_upload_go_once_its_presign_expired(h: Harness) -> None:
    data = files.png()
    presigned = (await h.ok(IMAGE_PRESIGN, {"table": "photos", "prop": "image", "type": "image/png"}))[
        "image_presign_url"
    ]
    assert (await post_form(presigned, data, "a.png", "image/png")).status_code == 201
    saved = (await h.ok(SAVE, record_vars("photos", "image", uploaded_key(presigned, "a.png"))))["record_create"]
    # The presign is still valid after the save: a client writes to its quarantine prefix again.
    assert (await post_form(presigned, files.jpeg(), "b.png", "image/png")).status_code == 201
    permanent = uploaded_key(presigned, "a.png").removeprefix("cache/")
    assert await h.keys() == sorted([uploaded_key(presigned, "b.png"), permanent])

    assert (await sweeper(h).run_once()).settled == 0  # the presign could still write there
    report = await sweeper(h).run_once(datetime.now(UTC) + LATER)
    assert (report.settled, report.objects_deleted) == (1, 1)
    assert await h.keys() == [permanent]
    assert (await Upload.get(key=permanent)).promotion == "settled"
    record = (await h.ok(RECORD, {"id": saved["id"], "prop": "image"}))["record"]
    assert (await download(record["upload"]["url"])).content == data


def test_settings_from_environment() -> None:
    settings = Settings.from_env({"SWEEP_GRACE": "120", "SWEEP_INTERVAL": "30"})
    assert SweepConfig.of(settings) == SweepConfig(grace=timedelta(seconds=120), interval=30.0)
    assert SweepConfig.of(Settings.from_env({})) == SweepConfig(grace=timedelta(hours=1), interval=300.0)


async def test_python_m_app_sweep_runs_one_pass(h: Harness) -> None:
    data = files.png()
    presigned = (await h.ok(IMAGE_PRESIGN, {"table": "photos", "prop": "image", "type": "image/png"}))[
        "image_presign_url"
    ]
    assert (await post_form(presigned, data, "a.png", "image/png")).status_code == 201
    await h.ok(SAVE, record_vars("photos", "image", uploaded_key(presigned, "a.png")))
    await Upload.filter(key=uploaded_key(presigned, "a.png").removeprefix("cache/")).update(
        status="discarded", record_id=None
    )

    env = {
        "PATH": os.environ.get("PATH", ""),
        "DATABASE_URL": h.settings.database_url,
        "S3_BUCKET": h.bucket,
        "S3_ENDPOINT_URL": h.server.url,
        "S3_PUBLIC_READ": h.server.public_read,
        "S3_CONDITIONAL_COPY": h.server.conditional_copy,
        "AWS_ACCESS_KEY_ID": h.server.access_key_id,
        "AWS_SECRET_ACCESS_KEY": h.server.secret_access_key,
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "app.sweep", env=env, cwd=ROOT, stdout=asyncio.subprocess.PIPE
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0
    assert b"discarded=1" in out
    assert await h.keys() == []


async def test_run_periodically_sweeps_until_cancelled(h: Harness) -> None:
    presigned = (await h.ok(IMAGE_PRESIGN, {"table": "photos", "prop": "image", "type": "image/png"}))[
        "image_presign_url"
    ]
    assert (await post_form(presigned, files.png(), "a.png", "image/png")).status_code == 201
    await h.ok(SAVE, record_vars("photos", "image", uploaded_key(presigned, "a.png")))
    await Upload.filter(key=uploaded_key(presigned, "a.png").removeprefix("cache/")).update(
        status="discarded", record_id=None
    )

    task = asyncio.create_task(run_periodically(sweeper_for(h.app.state.services), 0.05))
    try:
        for _ in range(100):
            if not await h.keys():
                break
            await asyncio.sleep(0.05)
        assert await h.keys() == []
        assert not task.done()  # still sweeping
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
