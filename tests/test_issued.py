"""app/uploads/issued.py writes the issued upload's row with its own SQL: it must store exactly what
`Upload.create` stores (same columns, same stored forms, same validation), on SQLite and PostgreSQL,
and its pending cap must count only the owner's issued, unexpired uploads."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from tortoise import connections
from tortoise.exceptions import ValidationError

from app.models import Upload
from app.uploads.issued import insert_issued
from tests.conftest import Harness

EXPIRES = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)


def values(token: str, **overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "token": token,
        "table": "photos",
        "property_name": "image",
        "owner": "alice",
        "method": "post",
        "key": f"photos/image/{token}/a b é.png",
        "min_size": 0,
        "max_size": 5_000_000_000,
        "content_types": ["image/png", "image/jpeg"],
        "declared_content_type": None,
        "acl": "private",
        "content_disposition": "inline",
        "cache_control": "max-age=60",
        "file_name": "a b é.png",
        "expires_at": EXPIRES,
    }
    return {**base, **overrides}


async def stored(upload_id: int) -> dict[str, Any]:
    """The row as the driver returns it: the stored forms, not the model's conversions."""
    db = connections.get("default")
    placeholder = "$1" if db.capabilities.dialect == "postgres" else "?"
    rows = await db.execute_query_dict(f'SELECT * FROM "uploads" WHERE "id" = {placeholder}', [upload_id])
    return dict(rows[0])


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"owner": None, "key": None, "file_name": None, "cache_control": None, "content_types": []},
        {"method": "put", "declared_size": 123, "checksum_sha256": "n4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg="},
    ],
)
async def test_rows_are_the_ones_tortoise_writes(h: Harness, overrides: dict[str, Any]) -> None:
    ours = await insert_issued(values("a" * 32, **overrides))
    assert ours is not None
    theirs = (await Upload.create(**values("b" * 32, **overrides))).id
    mine, reference = await stored(ours), await stored(theirs)
    for row in (mine, reference):
        del row["id"], row["token"]
        if isinstance(row["key"], str):
            row["key"] = row["key"].replace("a" * 32, "").replace("b" * 32, "")
    created = mine.pop("created_at"), reference.pop("created_at")
    assert mine == reference
    assert type(created[0]) is type(created[1])
    # Both read back through the model the same way.
    a, b = await Upload.get(id=ours), await Upload.get(id=theirs)
    for name in Upload._meta.fields_db_projection:
        if name not in ("id", "token", "key", "created_at"):
            assert getattr(a, name) == getattr(b, name), name
    assert a.status == "issued" and abs(a.created_at - b.created_at) < timedelta(seconds=30)


async def test_field_validation_is_the_models(h: Harness) -> None:
    with pytest.raises(ValidationError):
        await insert_issued(values("c" * 32, file_name="x" * 256))
    with pytest.raises(ValidationError):
        await Upload.create(**values("d" * 32, file_name="x" * 256))
    assert await Upload.all().count() == 0


async def test_the_cap_counts_the_owners_issued_unexpired_uploads(h: Harness) -> None:
    now = datetime.now(UTC)
    tokens = iter(f"{i:032x}" for i in range(100))
    assert await insert_issued(values(next(tokens)), cap=2, now=now) is not None
    assert await insert_issued(values(next(tokens)), cap=2, now=now) is not None
    assert await insert_issued(values(next(tokens)), cap=2, now=now) is None  # alice is at the cap
    assert await insert_issued(values(next(tokens), owner="bob"), cap=2, now=now) is not None
    assert await insert_issued(values(next(tokens), owner=None), cap=1, now=now) is not None
    assert await insert_issued(values(next(tokens), owner=None), cap=1, now=now) is None  # anonymous pool
    # Attached or expired uploads do not count.
    first = await Upload.filter(owner="alice").first()
    assert first is not None
    await Upload.filter(id=first.id).update(status="attached")
    assert await insert_issued(values(next(tokens)), cap=2, now=now) is not None
    assert await insert_issued(values(next(tokens)), cap=2, now=now) is None
    assert await insert_issued(values(next(tokens)), cap=2, now=EXPIRES + timedelta(seconds=1)) is not None
    assert await Upload.filter(owner="alice").count() == 4
    # Without a cap nothing is counted.
    assert await insert_issued(values(next(tokens))) is not None
    with pytest.raises(ValueError, match="current time"):
        await insert_issued(values(next(tokens)), cap=1)
