"""Token buckets in the database (the `rate_buckets` table), shared by every API process that uses
it: the presign rate limit then holds for a deployment, not per process.

One statement takes a token: an upsert that creates the caller's bucket full (less the token taken)
or refills it for the time elapsed and takes one, only when at least one token is there, and returns
the row it wrote. The row lock of the upsert makes concurrent takes of one caller, from any process,
happen one after the other; callers do not wait for each other. A refused take writes nothing and
reads the bucket once more, for the wait to report.

Time comes from the API process's clock (Unix seconds): several hosts agree on it to NTP's precision,
and a stamp from a host whose clock runs ahead is never moved back nor credited twice. A bucket idle
for a full refill is full again, the same as no row at all, so such rows are deleted, at most once a
refill period per process: the table holds the callers of about the last two minutes.

On PostgreSQL the table is UNLOGGED (migration 2): a take commits without waiting for a WAL flush, and
a crash or a failover only makes every bucket full again.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from typing import Any

from tortoise import connections

# Rows hold Caller.rate_key; a longer one (a JWT `sub` can be long) is kept as its digest.
MAX_KEY = 255

_SQL = {
    # ?NNN: numbered parameters, each value passed once.
    "sqlite": {
        "take": (
            'INSERT INTO "rate_buckets" ("key", "tokens", "stamp") VALUES (?1, ?2 - 1, ?3) '
            'ON CONFLICT ("key") DO UPDATE SET '
            '"tokens" = MIN(?2, "tokens" + MAX(0, ?3 - "stamp") * ?4) - 1, "stamp" = MAX(?3, "stamp") '
            'WHERE MIN(?2, "tokens" + MAX(0, ?3 - "stamp") * ?4) >= 1 '
            'RETURNING "tokens"'
        ),
        "read": 'SELECT "tokens", "stamp" FROM "rate_buckets" WHERE "key" = ?1',
        "prune": 'DELETE FROM "rate_buckets" WHERE "stamp" < ?1',
    },
    "postgres": {
        "take": (
            'INSERT INTO "rate_buckets" AS b ("key", "tokens", "stamp") VALUES ($1, $2::float8 - 1, $3::float8) '
            'ON CONFLICT ("key") DO UPDATE SET '
            '"tokens" = LEAST($2::float8, b."tokens" + GREATEST(0, $3::float8 - b."stamp") * $4::float8) - 1, '
            '"stamp" = GREATEST($3::float8, b."stamp") '
            'WHERE LEAST($2::float8, b."tokens" + GREATEST(0, $3::float8 - b."stamp") * $4::float8) >= 1 '
            'RETURNING "tokens"'
        ),
        "read": 'SELECT "tokens", "stamp" FROM "rate_buckets" WHERE "key" = $1',
        "prune": 'DELETE FROM "rate_buckets" WHERE "stamp" < $1::float8',
    },
}


def bucket_key(rate_key: str) -> str:
    if len(rate_key) <= MAX_KEY:
        return rate_key
    return "sha256:" + hashlib.sha256(rate_key.encode("utf-8", "surrogatepass")).hexdigest()


class DatabaseBuckets:
    """`rate_per_minute` tokens refill evenly; a burst of up to one minute's worth is allowed."""

    def __init__(self, rate_per_minute: int, clock: Callable[[], float] = time.time) -> None:
        self.capacity = float(rate_per_minute)
        self.per_second = rate_per_minute / 60.0
        self.refill_seconds = self.capacity / self.per_second
        self.clock = clock
        self._pruned_at: float | None = None

    async def take(self, key: str) -> float:
        """Take one token; 0.0 if granted, else the seconds until one is available."""
        db = connections.get("default")
        sql = _SQL[db.capabilities.dialect]
        key = bucket_key(key)
        now = self.clock()
        granted = await db.execute_query_dict(sql["take"], [key, self.capacity, now, self.per_second])
        await self._prune(db, sql, now)
        if granted:
            return 0.0
        rows = await db.execute_query_dict(sql["read"], [key])
        if not rows:  # pruned in between: it would be full
            return 0.0
        tokens = min(self.capacity, rows[0]["tokens"] + max(0.0, now - rows[0]["stamp"]) * self.per_second)
        return max(0.0, (1.0 - tokens) / self.per_second)

    async def _prune(self, db: Any, sql: dict[str, str], now: float) -> None:
        if self._pruned_at is None or now - self._pruned_at >= self.refill_seconds:
            self._pruned_at = now
            await db.execute_query(sql["prune"], [now - self.refill_seconds])
