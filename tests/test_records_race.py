"""A delete (or purge) and an update of one record at the same time (issue 14, item 2): the update
answers RECORD_NOT_FOUND or wins, never INTERNAL_SERVER_ERROR; nothing is half-done; a file the
losing update brought stays usable for another record."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from app.models import Record, Upload
from tests.conftest import Harness
from tests.gql import RECORD_CREATE, RECORD_DELETE, RECORD_UPDATE
from tests.test_flow import upload_photo

ROUNDS = 8
UPDATE = RECORD_UPDATE
RESTORE = """mutation($id: ID!, $url: String) { record_update(id: $id, record: {deleted_at: null,
  properties: [{name: "image", value: $url}]}) { id } }"""


async def photo_record(h: Harness) -> tuple[str, str]:
    url = await upload_photo(h, name="old.png")
    created = await h.ok(
        RECORD_CREATE, {"table": "photos", "prop": "image", "props": [{"name": "image", "value": url}]}
    )
    return str(created["record_create"]["id"]), url


def outcome(body: dict[str, Any]) -> str:
    if not body.get("errors"):
        return "ok"
    (error,) = body["errors"]
    return str(error["extensions"]["code"])


async def upload_of(url: str) -> Upload:
    token = url.rsplit("/", 2)[-2]
    return await Upload.get(token=token)


async def check_round(h: Harness, record_id: str, old_url: str, new_url: str, updated: str, deleted: str) -> None:
    """Whichever ran first, the end state is one of the two serial orders."""
    assert deleted == "ok" and updated in ("ok", "RECORD_NOT_FOUND"), (updated, deleted)
    record = await Record.get(id=int(record_id))
    assert record.deleted_at is not None
    new, old = await upload_of(new_url), await upload_of(old_url)
    if updated == "ok":  # update, then delete: the new file is the (deleted) record's, the old one released
        assert (new.status, new.record_id) == ("attached", record.id)
        assert old.status in ("discarded", "deleted") and old.record_id is None
    else:  # delete, then a refused update: nothing of it was written; its file can go elsewhere
        assert (new.status, new.record_id) == ("issued", None)
        assert (old.status, old.record_id) == ("attached", record.id)
        props = [{"name": "image", "value": new_url}]
        reused = (await h.ok(RECORD_CREATE, {"table": "photos", "prop": "image", "props": props}))["record_create"]
        assert reused["upload"]["file_name"] == "new.png"


async def test_concurrent_delete_and_update_of_one_record(h: Harness) -> None:
    seen = set()
    for round_number in range(ROUNDS):
        record_id, old_url = await photo_record(h)
        new_url = await upload_photo(h, name="new.png")
        update = h.gql(UPDATE, {"id": record_id, "prop": "image", "props": [{"name": "image", "value": new_url}]})
        delete = h.gql(RECORD_DELETE, {"id": record_id})
        first, second = (update, delete) if round_number % 2 == 0 else (delete, update)
        results = await asyncio.gather(first, second)
        updated, deleted = results if round_number % 2 == 0 else results[::-1]
        await check_round(h, record_id, old_url, new_url, outcome(updated), outcome(deleted))
        seen.add(outcome(updated))
    assert seen <= {"ok", "RECORD_NOT_FOUND"}


async def test_a_delete_between_the_updates_checks_and_its_transaction(h: Harness) -> None:
    """The interleaving that used to answer INTERNAL_SERVER_ERROR, forced: the record is deleted
    after the update read it and while its file is being verified."""
    record_id, old_url = await photo_record(h)
    new_url = await upload_photo(h, name="new.png")
    storage = h.app.state.services.uploads.storage
    probe = storage.probe
    deleted: list[dict[str, Any]] = []

    async def probe_then_delete(*args: Any, **kwargs: Any) -> Any:
        found = await probe(*args, **kwargs)
        if not deleted:
            deleted.append(await h.gql(RECORD_DELETE, {"id": record_id}))
        return found

    storage.probe = probe_then_delete
    try:
        body = await h.gql(UPDATE, {"id": record_id, "prop": "image", "props": [{"name": "image", "value": new_url}]})
    finally:
        storage.probe = probe
    assert outcome(body) == "RECORD_NOT_FOUND" and "deleted" in body["errors"][0]["message"]
    await check_round(h, record_id, old_url, new_url, "RECORD_NOT_FOUND", outcome(deleted[0]))


async def test_a_purge_racing_a_restore(h: Harness) -> None:
    """Purging (the hard delete, 30 days after deleted_at) and a restoring update of the same record."""
    records = h.app.state.services.records
    for round_number in range(ROUNDS):
        record_id, old_url = await photo_record(h)
        await Record.filter(id=int(record_id)).update(deleted_at=datetime(2020, 1, 1, tzinfo=UTC))
        new_url = await upload_photo(h, name="new.png")
        restore = h.gql(RESTORE, {"id": record_id, "url": new_url})
        purge = records.purge_deleted()
        if round_number % 2 == 0:
            body, purged = await asyncio.gather(restore, purge)
        else:
            purged, body = await asyncio.gather(purge, restore)
        restored = outcome(body)
        assert restored in ("ok", "RECORD_NOT_FOUND"), body
        record = await Record.get_or_none(id=int(record_id))
        new, old = await upload_of(new_url), await upload_of(old_url)
        if restored == "ok":  # restore, then purge: it is alive again and purge left it alone
            assert record is not None and record.deleted_at is None and purged == 0
            assert (new.status, new.record_id) == ("attached", record.id)
        else:  # purge, then a refused restore: the record and its old file are gone, the new file is usable
            assert record is None and purged == 1
            assert old.status in ("discarded", "deleted") and (new.status, new.record_id) == ("issued", None)
            props = [{"name": "image", "value": new_url}]
            await h.ok(RECORD_CREATE, {"table": "photos", "prop": "image", "props": props})
