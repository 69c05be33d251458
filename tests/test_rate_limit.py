"""The presign rate limit holds across API processes: its token buckets live in the database
(app/rate_buckets.py), one row per caller, taken by one atomic statement, and idle rows are pruned."""

from __future__ import annotations

import asyncio
import math
import signal
import time
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from tortoise import connections

from app.models import RateBucket, Upload
from app.rate_buckets import DatabaseBuckets
from tests.conftest import BACKEND, MotoServer, make_settings
from tests.gql import IMAGE_PRESIGN
from tests.live import start_api_process

SECRET = "r" * 40
RATE = 30


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def test_two_api_processes_together_allow_only_the_rate(
    moto: MotoServer, database_url: str, tmp_path: Path
) -> None:
    settings = make_settings(moto, database_url, AUTH_JWT_SECRET=SECRET, PRESIGN_RATE_PER_MINUTE=RATE)
    env = {
        "DATABASE_URL": database_url,
        "S3_BUCKET": settings.s3_bucket,
        "S3_ENDPOINT_URL": moto.url,
        "S3_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "SCHEMA_DIR": str(settings.schema_dir),
        "AUTH_JWT_SECRET": SECRET,
        "PRESIGN_RATE_PER_MINUTE": str(RATE),
        "MAX_PENDING_UPLOADS": "1000",
    }
    servers = [start_api_process(env, tmp_path / f"api-{i}.log") for i in range(2)]
    try:
        token = jwt.encode({"sub": "alice", "exp": int(time.time()) + 600}, SECRET, algorithm="HS256")
        body = {"query": IMAGE_PRESIGN, "variables": {"table": "photos", "prop": "image"}}
        started = time.monotonic()
        async with httpx.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=30) as client:
            answers = await asyncio.gather(
                *(client.post(f"{servers[i % 2][0]}/graphql", json=body) for i in range(3 * RATE))
            )
        elapsed = time.monotonic() - started
        codes = [a.json()["errors"][0]["extensions"]["code"] if "errors" in a.json() else "ok" for a in answers]
        assert set(codes) <= {"ok", "TOO_MANY_REQUESTS"}, codes
        # Each process alone would grant RATE; together they grant RATE, plus what refilled meanwhile.
        granted = codes.count("ok")
        assert RATE <= granted <= RATE + math.ceil(elapsed * RATE / 60), (granted, elapsed)
        refused = next(a for a, c in zip(answers, codes, strict=True) if c != "ok")
        assert "at most 30 per minute" in refused.json()["errors"][0]["message"]
    finally:
        for _, process in servers:
            process.send_signal(signal.SIGTERM)
        for _, process in servers:
            process.wait(15)
    from tortoise import Tortoise

    from app import db

    await Tortoise.init(config=db.tortoise_config(database_url))
    try:
        assert await Upload.filter(owner="alice").count() == granted
        assert await RateBucket.filter(key="sub:alice").count() == 1
    finally:
        await Tortoise.close_connections()


@pytest.fixture
async def orm(database_url: str) -> Any:
    from tortoise import Tortoise

    from app import db

    await Tortoise.init(config=db.tortoise_config(database_url))
    yield
    await Tortoise.close_connections()


async def test_a_bucket_refills_at_the_rate_and_bursts_a_minute(orm: None) -> None:
    clock = Clock()
    buckets = DatabaseBuckets(60, clock)
    for _ in range(60):
        assert await buckets.take("sub:bob") == 0.0
    assert await buckets.take("sub:bob") == pytest.approx(1.0)
    clock.now += 0.5
    assert await buckets.take("sub:bob") == pytest.approx(0.5)
    clock.now += 0.5
    assert await buckets.take("sub:bob") == 0.0
    assert await buckets.take("sub:carol") == 0.0  # callers do not share buckets
    # A host whose clock runs behind neither refills nor moves the stamp back.
    stamp = (await RateBucket.get(key="sub:bob")).stamp
    clock.now -= 30
    assert await buckets.take("sub:bob") > 0
    assert (await RateBucket.get(key="sub:bob")).stamp == stamp
    # A very long subject is stored as its digest, and still one bucket.
    long_key = "sub:" + "x" * 5000
    assert await buckets.take(long_key) == 0.0
    assert await RateBucket.filter(key__startswith="sha256:").count() == 1


async def test_idle_buckets_are_pruned(orm: None) -> None:
    clock = Clock()
    buckets = DatabaseBuckets(60, clock)
    for i in range(200):
        await buckets.take(f"sub:caller-{i}")
    assert await RateBucket.all().count() == 200
    # Within a refill period nothing is pruned: those buckets are not full again yet.
    clock.now += 59
    await buckets.take("sub:caller-0")
    assert await RateBucket.all().count() == 200
    # A full period later only the buckets taken from since are left.
    clock.now += 2
    await buckets.take("sub:newcomer")
    assert sorted(await RateBucket.all().values_list("key", flat=True)) == ["sub:caller-0", "sub:newcomer"]
    # Another process's buckets are pruned by whichever process prunes next.
    other = DatabaseBuckets(60, clock)
    clock.now += 61
    await other.take("sub:late")
    assert await RateBucket.all().values_list("key", flat=True) == ["sub:late"]


async def test_concurrent_takes_of_one_caller_grant_exactly_the_capacity(orm: None) -> None:
    """The take is one statement: many at once (here on separate connections of a pool on PostgreSQL)
    never grant more than the bucket holds."""
    clock = Clock()
    buckets = [DatabaseBuckets(20, clock) for _ in range(4)]
    waits = await asyncio.gather(*(buckets[i % 4].take("sub:dave") for i in range(60)))
    assert sum(w == 0.0 for w in waits) == 20
    row = await RateBucket.get(key="sub:dave")
    assert row.tokens == pytest.approx(0.0)


@pytest.mark.skipif(BACKEND != "postgres", reason="UNLOGGED is PostgreSQL's")
async def test_buckets_skip_the_write_ahead_log_on_postgres(orm: None) -> None:
    """A take commits without waiting for a WAL flush; a crash only refills every bucket."""
    _, rows = await connections.get("default").execute_query(
        "SELECT relpersistence FROM pg_class WHERE relname = 'rate_buckets'"
    )
    assert rows[0]["relpersistence"] == b"u"  # PostgreSQL's "char" type arrives as bytes
