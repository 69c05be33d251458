"""Verified bytes are served bytes: a client only ever writes to its quarantine key, and the save
promotes the object it verified to the permanent key with a server-side copy conditional on that
object's ETag. Whatever the client writes afterwards, however saves race, and wherever storage fails,
a record serves the bytes that were checked, or nothing. On moto and on SeaweedFS."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from tortoise.transactions import in_transaction

from app.errors import ContentMismatch, StorageUnavailable
from app.keys import parse_key
from app.models import Record, Upload
from app.sweep import SweepConfig, Sweeper
from app.uploads import Caller, Promotion, PromotionResult, Uploads
from app.uploads.values import utcnow
from tests import files
from tests.conftest import Harness, SeaweedServer, post_form, uploaded_key
from tests.gql import ATTACHMENT_PRESIGN, IMAGE_PRESIGN, RECORD, RECORD_CREATE, RECORD_UPDATE
from tests.large import MIB, MP_COMPLETE, MP_CREATE, MP_SIGN, PUT_PRESIGN, SAVE, blob, put, record_vars, schema_dir
from tests.test_faults import app_on
from tests.test_flow import download

pytestmark = pytest.mark.backends("moto", "seaweedfs")
ANONYMOUS = Caller()


async def presign_photo(h: Harness) -> dict[str, Any]:
    variables = {"table": "photos", "prop": "image", "type": "image/png", "name": "cat.png"}
    presigned: dict[str, Any] = (await h.ok(IMAGE_PRESIGN, variables))["image_presign_url"]
    return presigned


async def saved_photo(h: Harness, data: bytes) -> tuple[dict[str, Any], dict[str, Any]]:
    presigned = await presign_photo(h)
    assert (await post_form(presigned, data, "cat.png", "image/png")).status_code == 201
    record = (await h.ok(SAVE, record_vars("photos", "image", presigned["url"])))["record_create"]
    return presigned, record


async def served(h: Harness, record_id: str) -> bytes:
    record = (await h.ok(RECORD, {"id": record_id, "prop": "image"}))["record"]
    return (await download(record["upload"]["url"])).content


def uploads(h: Harness) -> Uploads:
    result: Uploads = h.app.state.services.uploads
    return result


async def test_reposting_after_the_save_changes_nothing_served(h: Harness) -> None:
    data = files.png()
    presigned, record = await saved_photo(h, data)
    assert record["upload"]["url"] != presigned["url"]  # served from the permanent key
    # The presign is still valid: storage takes HTML posted as a PNG to the same key.
    fields = {**presigned["upload_url_payload"]}
    assert (
        await post_form({**presigned, "upload_url_payload": fields}, files.HTML, "cat.png", "image/png")
    ).status_code == 201
    assert await served(h, record["id"]) == data
    again = (await h.ok(RECORD, {"id": record["id"], "prop": "image"}))["record"]["upload"]
    assert (again["size"], again["content_type"]) == (len(data), "image/png")
    # Saving the same value again into the same property is a no-op, and copies nothing.
    same = await h.ok(
        RECORD_UPDATE, {"id": record["id"], "prop": "image", "props": [{"name": "image", "value": presigned["url"]}]}
    )
    assert same["record_update"]["upload"]["url"] == record["upload"]["url"]
    assert await served(h, record["id"]) == data
    # The URL queries return saves back idempotently too; into another record it is taken.
    permanent = record["upload"]["url"]
    same = await h.ok(
        RECORD_UPDATE, {"id": record["id"], "prop": "image", "props": [{"name": "image", "value": permanent}]}
    )
    assert same["record_update"]["upload"]["url"] == permanent
    assert await h.error_code(SAVE, record_vars("photos", "image", permanent)) == "UPLOAD_ALREADY_ATTACHED"


async def test_reputting_after_the_save_changes_nothing_served(h: Harness) -> None:
    data = files.png(90, 60)
    variables = {
        "table": "photos",
        "prop": "image",
        "put": {"file_name": "p.png", "content_type": "image/png", "size": len(data)},
    }
    presigned = (await h.ok(PUT_PRESIGN, variables))["property_upload_presigned_url"]
    assert (await put(presigned["upload_url"], data, presigned["headers"])).status_code == 200
    record = (await h.ok(SAVE, record_vars("photos", "image", presigned["key"])))["record_create"]
    other = files.padded(b"<html><script>alert(1)</script>", len(data))  # same length and headers
    assert (await put(presigned["upload_url"], other, presigned["headers"])).status_code == 200
    assert (await download(record["upload"]["url"])).content == data
    assert await h.error_code(SAVE, record_vars("photos", "image", presigned["key"])) == "UPLOAD_ALREADY_ATTACHED"


async def test_recompleting_a_multipart_upload_after_the_save_changes_nothing_served(
    harness_factory: Any, tmp_path: Path
) -> None:
    h: Harness = await harness_factory(SCHEMA_DIR=schema_dir(tmp_path))
    data = blob(6 * MIB, seed=9)
    started = (
        await h.ok(
            MP_CREATE, {"table": "videos", "prop": "clip", "name": "a.mp4", "type": "video/mp4", "size": len(data)}
        )
    )["multipart_upload_create"]
    ids = {"id": started["upload_id"], "key": started["key"]}
    urls = {
        s["part_number"]: s["url"]
        for s in (await h.ok(MP_SIGN, ids | {"parts": [1, 2]}))["multipart_upload_sign_parts"]
    }
    chunks = {1: data[: 5 * MIB], 2: data[5 * MIB :]}
    etags = {n: (await put(urls[n], chunks[n], {})).headers["ETag"] for n in (1, 2)}
    parts = [{"part_number": n, "etag": e} for n, e in sorted(etags.items())]
    done = (await h.ok(MP_COMPLETE, ids | {"parts": parts}))["multipart_upload_complete"]
    record = (await h.ok(SAVE, record_vars("videos", "clip", done["url"])))["record_create"]
    # Completing (or signing parts) again is refused; a part URL still valid finds no open upload.
    assert await h.error_code(MP_COMPLETE, ids | {"parts": parts}) == "UPLOAD_ALREADY_ATTACHED"
    assert await h.error_code(MP_SIGN, ids | {"parts": [1]}) == "UPLOAD_ALREADY_ATTACHED"
    assert (await put(urls[2], blob(MIB, seed=10), {})).status_code >= 400  # moto: 500, S3: 404
    assert (await download(record["upload"]["url"])).content == data


async def test_a_private_file_is_never_public_whatever_the_client_stored(h: Harness) -> None:
    data = files.pdf()
    variables = {"table": "documents", "prop": "resume", "type": "application/pdf", "name": "cv.pdf"}
    presigned = (await h.ok(ATTACHMENT_PRESIGN, variables))["attachment_presign_url"]
    hostile = {**presigned, "upload_url_payload": {**presigned["upload_url_payload"], "acl": "public-read"}}
    stored = await post_form(hostile, data, "cv.pdf", "application/pdf")
    if h.server.enforces_policy:
        assert stored.status_code == 403  # the policy signs acl=private
        assert (await post_form(presigned, data, "cv.pdf", "application/pdf")).status_code == 201
    else:
        assert stored.status_code == 201  # moto stores it as public-read
    props = [{"name": "title", "value": "CV"}, {"name": "resume", "value": presigned["url"]}]
    created = (await h.ok(RECORD_CREATE, {"table": "documents", "prop": "resume", "props": props}))["record_create"]
    signed = created["upload"]["url"]
    assert (await download(signed)).content == data
    # Promoted as a private object: neither its permanent URL nor the quarantine one serves it.
    assert (await download(signed.split("?", 1)[0])).status_code == 403
    assert (await download(presigned["url"])).status_code in (403, 404)


async def test_quarantine_is_never_read_anonymously_on_policy_storage(h: Harness) -> None:
    if h.server.public_read != "policy":
        pytest.skip("object ACLs decide there (moto stores what a client sends: the save re-checks it)")
    key = "cache/photos/image/" + "ab" * 16 + "/x.png"
    await h.s3.put_object(Bucket=h.bucket, Key=key, Body=b"x", ACL="public-read")
    assert (await download(uploads(h).storage.public_url(key))).status_code == 403


async def test_a_file_changed_between_the_check_and_the_copy_is_not_saved(h: Harness) -> None:
    first, second = files.png(64, 48), files.png(65, 48)
    presigned = await presign_photo(h)
    assert (await post_form(presigned, first, "cat.png", "image/png")).status_code == 201
    pdef = uploads(h).table("photos").properties["image"]
    item = await uploads(h).verify(ANONYMOUS, "photos", pdef, presigned["url"], None)
    assert (await post_form(presigned, second, "cat.png", "image/png")).status_code == 201
    with pytest.raises(ContentMismatch):
        await uploads(h).promoting.promote_verified(item)
    await uploads(h).promoting.release([item])
    assert await Record.all().count() == 0
    # Saved again, the new bytes are checked and those are served.
    record = (await h.ok(SAVE, record_vars("photos", "image", presigned["url"])))["record_create"]
    assert (await download(record["upload"]["url"])).content == second


async def test_two_saves_of_one_upload_race(h: Harness) -> None:
    data = files.png()
    presigned = await presign_photo(h)
    assert (await post_form(presigned, data, "cat.png", "image/png")).status_code == 201
    bodies = await asyncio.gather(*(h.gql(SAVE, record_vars("photos", "image", presigned["url"])) for _ in range(4)))
    saved = [b for b in bodies if "errors" not in b]
    assert len(saved) == 1, bodies
    assert {b["errors"][0]["extensions"]["code"] for b in bodies if "errors" in b} == {"UPLOAD_ALREADY_ATTACHED"}
    assert await Record.filter(table="photos").count() == 1
    assert (await download(saved[0]["data"]["record_create"]["upload"]["url"])).content == data


async def test_a_save_holding_the_upload_keeps_other_bytes_out(h: Harness) -> None:
    first, second = files.png(64, 48), files.png(70, 48)
    presigned = await presign_photo(h)
    assert (await post_form(presigned, first, "cat.png", "image/png")).status_code == 201
    pdef = uploads(h).table("photos").properties["image"]
    holding = await uploads(h).verify(ANONYMOUS, "photos", pdef, presigned["url"], None)
    await uploads(h).promoting.promote_verified(holding)  # claimed and copied; its record not written yet
    assert (await post_form(presigned, second, "cat.png", "image/png")).status_code == 201
    assert await h.error_code(SAVE, record_vars("photos", "image", presigned["url"])) == "UPLOAD_ALREADY_ATTACHED"
    # The first save finishes: its record serves the bytes it checked.
    async with in_transaction():
        record = await Record.create(table="photos", properties={}, created_at=utcnow(), updated_at=utcnow())
        await uploads(h).attach(holding, record.id)
    assert await served(h, str(record.id)) == first


async def test_promote_a_saved_upload_kept_in_quarantine(h: Harness) -> None:
    """The step a job runs for a property whose files are checked further before they are served."""
    data = files.png()
    presigned = await presign_photo(h)
    assert (await post_form(presigned, data, "cat.png", "image/png")).status_code == 201
    pdef = uploads(h).table("photos").properties["image"]
    item = await uploads(h).verify(ANONYMOUS, "photos", pdef, presigned["url"], None)
    await uploads(h).promoting.claim(item)
    record = await Record.create(table="photos", properties={}, created_at=utcnow(), updated_at=utcnow())
    # As a save that keeps the file in quarantine leaves it: attached, promotion pending.
    await Upload.filter(id=item.upload.id).update(
        status="attached", record_id=record.id, key=item.key, size=len(data), content_type="image/png",
        file_name="cat.png", promotion=Promotion.PENDING, attached_at=datetime.now(UTC),
    )  # fmt: skip
    view = (await h.ok(RECORD, {"id": str(record.id), "prop": "image"}))["record"]["upload"]
    assert view["url"] is None  # nothing is served before promotion
    assert await uploads(h).promote(item.upload.id) is PromotionResult.PROMOTED
    assert await served(h, str(record.id)) == data
    assert await h.keys() == [item.key]
    assert await uploads(h).promote(item.upload.id) is PromotionResult.SKIPPED

    # Changed in quarantine before its promotion: never served, and the record lets go of it.
    presigned = await presign_photo(h)
    assert (await post_form(presigned, data, "cat.png", "image/png")).status_code == 201
    item = await uploads(h).verify(ANONYMOUS, "photos", pdef, presigned["url"], None)
    await Upload.filter(id=item.upload.id).update(
        status="attached", record_id=record.id, key=item.key, etag=item.etag, promotion=Promotion.PENDING,
        content_type="image/png",
    )  # fmt: skip
    assert (await post_form(presigned, files.jpeg(), "cat.png", "image/png")).status_code == 201
    assert await uploads(h).promote(item.upload.id) is PromotionResult.CHANGED
    changed = await Upload.get(id=item.upload.id)
    assert (changed.status, changed.record_id) == ("discarded", None)


# -- storage failing mid-save: a SeaweedFS of this test's own, stopped and started again -----------
@pytest.fixture
def own_storage(tmp_path: Path) -> Iterator[SeaweedServer]:
    server = SeaweedServer(tmp_path / "seaweedfs")
    server.start()
    yield server
    server.stop()


async def test_storage_failing_mid_save_loses_nothing_and_serves_nothing_unverified(
    own_storage: SeaweedServer, database_url: str
) -> None:
    async with app_on(own_storage, database_url) as h:
        data = files.png()
        presigned = await presign_photo(h)
        assert (await post_form(presigned, data, "cat.png", "image/png")).status_code == 201
        photos = uploads(h).table("photos")

        # Down between the check and the copy: the copy fails, the save lets go (what `saving` does
        # on any failure) and nothing is saved; once storage is back the file saves.
        item = await uploads(h).verify(ANONYMOUS, "photos", photos.properties["image"], presigned["url"], None)
        own_storage.stop()
        with pytest.raises(StorageUnavailable):
            await uploads(h).promoting.promote_verified(item)
        await uploads(h).promoting.release([item])
        own_storage.start()
        assert await Record.all().count() == 0 and (await Upload.get(id=item.upload.id)).etag is None

        # Down between the commit and the delete of the quarantined object: the save stands.
        async with uploads(h).saving(ANONYMOUS, photos, {"image": presigned["url"]}, None) as verified:
            async with in_transaction():
                record = await Record.create(table="photos", properties={}, created_at=utcnow(), updated_at=utcnow())
                await uploads(h).attach(verified["image"], record.id)
            own_storage.stop()
        own_storage.start()
        assert await served(h, str(record.id)) == data
        quarantined = uploaded_key(presigned, "cat.png")
        assert await h.keys() == sorted([quarantined, parse_key(quarantined).permanent])
        # The sweep finishes it once the presign expired.
        services = h.app.state.services
        sweeper = Sweeper(services.storage, services.uploads, SweepConfig())
        report = await sweeper.run_once(datetime.now(UTC) + timedelta(days=1))
        assert report.settled == 1 and await h.keys() == [parse_key(quarantined).permanent]
        assert await served(h, str(record.id)) == data
