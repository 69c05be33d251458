"""The clean-up sweep: storage hygiene for uploads that were never saved, or were released.

- An upload presigned (POST, PUT or multipart) but never saved into a record is removed once its
  expiry plus `SWEEP_GRACE` has passed: an open multipart upload is aborted and every object under
  the upload's own key prefix is deleted (so extra objects a client put under an issued prefix go
  too). Only that prefix is ever listed, never the whole bucket.
- Uploads left `discarded` (replaced or deleted while storage was down) are deleted again.
- An attached upload is never touched: only rows in `issued`/`expiring`/`discarded` are selected, and
  an upload is claimed (`issued` -> `expiring`) with a conditional update before anything is deleted,
  so a concurrent save either wins (and the sweep skips it) or fails cleanly.

`python -m app.sweep` runs one pass; the worker calls `run_periodically(sweeper)`.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from app.errors import AppError
from app.keys import key_prefix
from app.models import Upload
from app.services import Services
from app.settings import Settings
from app.storage.s3 import Storage
from app.uploads import Uploads

log = logging.getLogger(__name__)

BATCH = 200


@dataclass(frozen=True)
class SweepConfig:
    grace: timedelta = timedelta(hours=1)  # after expires_at (SWEEP_GRACE)
    interval: float = 300.0  # seconds between passes of run_periodically (SWEEP_INTERVAL)

    @classmethod
    def of(cls, settings: Settings) -> SweepConfig:
        return cls(grace=settings.sweep_grace, interval=settings.sweep_interval.total_seconds())


def sweeper_for(services: Services) -> Sweeper:
    return Sweeper(services.storage, services.uploads, SweepConfig.of(services.settings))


@dataclass
class SweepReport:
    expired: int = 0  # never-saved uploads cleaned up
    aborted: int = 0  # open multipart uploads aborted
    discarded: int = 0  # released uploads whose objects are now gone
    objects_deleted: int = 0
    failed: int = 0  # left for the next pass (storage unavailable)


class Sweeper:
    def __init__(self, storage: Storage, uploads: Uploads, config: SweepConfig) -> None:
        self.storage = storage
        self.uploads = uploads
        self.config = config

    async def run_once(self, now: datetime | None = None) -> SweepReport:
        now = now or self.uploads.clock()
        # Never earlier than a confirm could still succeed (expiry plus the confirm grace).
        grace = max(self.config.grace, self.uploads.confirm_grace)
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


async def run_periodically(sweeper: Sweeper, interval: float | None = None) -> None:
    """Sweep forever, every `interval` seconds (SWEEP_INTERVAL by default); a failed pass is logged
    and the next one runs as usual. Cancel the task to stop."""
    pause = interval if interval is not None else sweeper.config.interval
    while True:
        try:
            report = await sweeper.run_once()
            if report.expired or report.discarded or report.failed:
                log.info("sweep: %s", report)
        except Exception:
            log.exception("sweep pass failed; retrying in %ss", pause)
        await asyncio.sleep(pause)


async def _main() -> SweepReport:
    async with Services(Settings.from_env()) as services:
        return await sweeper_for(services).run_once()


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    print(asyncio.run(_main()))
