"""Per-caller presign limits: a rate (token bucket) and a cap on pending uploads (a condition of the
INSERT that issues the upload).

The token buckets live in the database by default (PRESIGN_RATE_STORE=database, app/rate_buckets.py):
every API process on one database shares them, so the rate holds for the deployment. With
PRESIGN_RATE_STORE=process they live in this process's memory, which costs no database statement but
lets N processes allow N times the rate. The pending-upload cap is read from the database and holds
across processes either way.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol

from app.errors import TooManyRequests
from app.rate_buckets import DatabaseBuckets
from app.uploads.issued import insert_issued

# Buckets of callers idle long enough are full again and can be forgotten; this bounds memory.
MAX_TRACKED_CALLERS = 10_000
RATE_STORES = ("database", "process")


class Buckets(Protocol):
    capacity: float

    async def take(self, key: str) -> float:
        """Take one token; 0.0 if granted, else the seconds until one is available."""
        ...


class TokenBucket:
    """In this process's memory: `rate_per_minute` tokens refill evenly; a burst of up to one minute's
    worth is allowed."""

    def __init__(self, rate_per_minute: int, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.capacity = float(rate_per_minute)
        self.per_second = rate_per_minute / 60.0
        self.monotonic = monotonic
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    async def take(self, key: str) -> float:
        """Take one token; 0.0 if granted, else the seconds until one is available."""
        now = self.monotonic()
        tokens, stamp = self._buckets.pop(key, (self.capacity, now))
        tokens = min(self.capacity, tokens + (now - stamp) * self.per_second)
        wait = 0.0
        if tokens >= 1.0:
            tokens -= 1.0
        else:
            wait = (1.0 - tokens) / self.per_second
        self._buckets[key] = (tokens, now)
        while len(self._buckets) > MAX_TRACKED_CALLERS:
            self._buckets.popitem(last=False)
        return wait


def buckets(store: str, rate_per_minute: int) -> Buckets:
    if store == "process":
        return TokenBucket(rate_per_minute)
    if store == "database":
        return DatabaseBuckets(rate_per_minute)
    raise ValueError(f"unknown rate store {store!r}; one of {', '.join(RATE_STORES)}")


class PresignQuota:
    def __init__(
        self, rate_per_minute: int, max_pending: int, clock: Callable[[], datetime], *, store: str = "database"
    ) -> None:
        self.bucket = buckets(store, rate_per_minute)
        self.max_pending = max_pending
        self.clock = clock

    async def take(self, rate_key: str) -> None:
        """One presign of the caller's rate, or TooManyRequests."""
        wait = await self.bucket.take(rate_key)
        if wait > 0:
            raise TooManyRequests(
                f"too many presign requests; at most {int(self.bucket.capacity)} per minute, "
                f"retry in {max(1, round(wait))} s",
                retry_after=max(1, round(wait)),
            )

    async def issue(self, values: dict[str, Any]) -> int:
        """Write the issued upload's row unless its owner already has `max_pending` issued, unexpired
        uploads (anonymous callers, with no owner, share one pool). The cap is a condition of the
        INSERT (app/uploads/issued.py): served by the (owner, status, expires_at) index and stopped at the
        cap, so it reads at most the cap's worth of index entries whatever else is pending. Every way
        of issuing an upload (form POST, PUT, multipart) goes through here; returns the row's id."""
        upload_id = await insert_issued(values, cap=self.max_pending, now=self.clock())
        if upload_id is None:
            raise TooManyRequests(
                f"{self.max_pending} uploads are presigned but not yet saved; save them or let them expire "
                "before presigning more"
            )
        return upload_id
