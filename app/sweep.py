"""The clean-up sweep: storage hygiene for uploads that were never saved, or were released.

- An upload presigned (POST, PUT or multipart) but never saved into a record is removed once its
  expiry plus `SWEEP_GRACE` has passed: an open multipart upload is aborted and every object under
  the upload's own key prefix is deleted (so extra objects a client put under an issued prefix go
  too). Only that prefix is ever listed, never the whole bucket.
- Uploads left `discarded` (replaced or deleted while storage was down) are deleted again.
- An attached upload is never touched: only rows in `issued`/`expiring`/`discarded` are selected, and
  an upload is claimed (`issued` -> `expiring`) with a conditional update before anything is deleted,
  so a concurrent save either wins (and the sweep skips it) or fails cleanly.

`python -m app.sweep` runs one pass; the worker calls `run_periodically(services, interval)`.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from app.errors import AppError
from app.keys import key_prefix
from app.models import Upload
from app.settings import _int

if TYPE_CHECKING:
    from app.main import Services

log = logging.getLogger(__name__)

BATCH = 200


@dataclass(frozen=True)
class SweepSettings:
    grace: timedelta = timedelta(hours=1)  # SWEEP_GRACE seconds after expires_at
    interval: float = 300.0  # SWEEP_INTERVAL seconds between passes of run_periodically

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> SweepSettings:
        env = os.environ if env is None else env
        return cls(
            grace=timedelta(seconds=_int(env, "SWEEP_GRACE", 3600, 0, 30 * 86400)),
            interval=float(_int(env, "SWEEP_INTERVAL", 300, 1, 86400)),
        )


@dataclass
class SweepReport:
    expired: int = 0  # never-saved uploads cleaned up
    aborted: int = 0  # open multipart uploads aborted
    discarded: int = 0  # released uploads whose objects are now gone
    objects_deleted: int = 0
    failed: int = 0  # left for the next pass (storage unavailable)


class Sweeper:
    def __init__(self, services: Services, settings: SweepSettings | None = None) -> None:
        self.storage = services.storage
        self.uploads = services.uploads
        self.settings = settings or SweepSettings.from_env()

    async def run_once(self, now: datetime | None = None) -> SweepReport:
        now = now or self.uploads.clock()
        # Never earlier than a confirm could still succeed (expiry plus the confirm grace).
        grace = max(self.settings.grace, self.uploads.confirm_grace)
        report = SweepReport()
        stale = [
            u.id
            for u in await Upload.filter(status="issued", expires_at__lt=now - grace)
            .order_by("expires_at")
            .limit(BATCH)
        ]
        if stale:
            await Upload.filter(id__in=stale, status="issued").update(status="expiring")
        # `expiring` also holds claims an earlier pass could not finish (storage was down).
        for upload in await Upload.filter(status="expiring").order_by("expires_at").limit(BATCH):
            if await self._clean(upload, report, multipart=True):
                await Upload.filter(id=upload.id, status="expiring").update(status="expired")
                report.expired += 1
        for upload in await Upload.filter(status="discarded").order_by("id").limit(BATCH):
            if await self._clean(upload, report, multipart=False):
                await Upload.filter(id=upload.id, status="discarded").update(status="deleted")
                report.discarded += 1
        return report

    async def _clean(self, upload: Upload, report: SweepReport, *, multipart: bool) -> bool:
        try:
            if multipart and upload.multipart_upload_id and upload.key:
                if await self.storage.abort_multipart_upload(upload.key, upload.multipart_upload_id):
                    report.aborted += 1
            # The prefix holds the original, any versions and anything else put under the token.
            keys = await self.storage.list_keys(key_prefix(upload.table, upload.property_name, upload.token))
            await self.storage.delete(keys)
        except AppError as exc:
            log.warning("sweep: could not clean upload %s now (%s); next pass retries", upload.id, exc.message)
            report.failed += 1
            return False
        report.objects_deleted += len(keys)
        return True


async def run_periodically(
    services: Services, interval: float | None = None, *, settings: SweepSettings | None = None
) -> None:
    """Sweep forever, every `interval` seconds (SWEEP_INTERVAL by default); a failed pass is logged
    and the next one runs as usual. Cancel the task to stop."""
    sweeper = Sweeper(services, settings)
    pause = interval if interval is not None else sweeper.settings.interval
    while True:
        try:
            report = await sweeper.run_once()
            if report.expired or report.discarded or report.failed:
                log.info("sweep: %s", report)
        except Exception:
            log.exception("sweep pass failed; retrying in %ss", pause)
        await asyncio.sleep(pause)


async def _main() -> SweepReport:
    from app import db
    from app.main import Services
    from app.settings import Settings
    from app.tables import load_tables

    settings = Settings.from_env()
    services = Services(settings, load_tables(settings.schema_dir))
    orm = await db.connect(settings.database_url)
    try:
        await services.storage.start()
        try:
            return await Sweeper(services).run_once()
        finally:
            await services.storage.close()
    finally:
        await db.disconnect(orm)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    print(asyncio.run(_main()))
