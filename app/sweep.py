"""The clean-up sweep: storage hygiene for uploads that were never saved, were released, or left
something in quarantine.

- An upload presigned (POST, PUT or multipart) but never saved into a record is removed once its
  expiry plus `SWEEP_GRACE` has passed: an open multipart upload is aborted and every object under the
  upload's own quarantine and permanent prefixes is deleted (extra objects a client put under an
  issued prefix, a copy left by a save that failed after promoting). Only those prefixes are ever
  listed, never the whole bucket.
- A saved upload's quarantine prefix is emptied once its presign can no longer write there (expiry
  plus grace): the promoted object is served from its permanent key, and whatever the client wrote to
  the quarantine key after the save (or a save could not delete) goes. The upload becomes `settled`.
  So does one the virus scan refused (its `scan_status` keeps it unserved). A file still waiting for
  its scan keeps its quarantined object.
- Uploads left `discarded` (replaced or deleted while storage was down) are deleted again.
- A saved file is never touched: only rows in `issued`/`expiring`/`discarded` are cleaned, a promoted
  upload only in quarantine, and an upload is claimed (`issued` -> `expiring`) with a conditional
  update before anything is deleted, so a concurrent save either wins (and the sweep skips it) or
  fails cleanly.

`python -m app.sweep` runs one pass; the worker calls `run_periodically(sweeper)`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from app.errors import AppError
from app.keys import key_prefix, quarantine_key, quarantine_prefix
from app.models import Upload, UploadVersion
from app.services import Services
from app.settings import Settings
from app.storage.base import Storage
from app.uploads import Promotion, Uploads, UploadStatus
from app.uploads.discarding import object_keys

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


def housekeeping(services: Services) -> list[Callable[[], Coroutine[Any, Any, None]]]:
    """The loops that live as long as a worker: the sweep, and the purge of records deleted long ago."""
    sweeper = sweeper_for(services)
    return [lambda: run_periodically(sweeper), services.records.purge_periodically]


@dataclass
class SweepReport:
    expired: int = 0  # never-saved uploads cleaned up
    aborted: int = 0  # open multipart uploads aborted
    discarded: int = 0  # released uploads whose objects are now gone
    settled: int = 0  # saved uploads whose quarantine prefix was emptied
    objects_deleted: int = 0
    failed: int = 0  # left for the next pass (storage unavailable)


class Sweeper:
    def __init__(self, storage: Storage, uploads: Uploads, config: SweepConfig) -> None:
        self.storage = storage
        self.uploads = uploads
        self.config = config

    async def run_once(self, now: datetime | None = None) -> SweepReport:
        now = now or self.uploads.clock()
        # Never earlier than a save could still succeed (expiry plus the confirm grace).
        grace = max(self.config.grace, self.uploads.confirm_grace)
        report = SweepReport()
        stale = [
            u.id
            for u in await Upload.filter(status=UploadStatus.ISSUED, expires_at__lt=now - grace)
            .order_by("expires_at")
            .limit(BATCH)
        ]
        if stale:
            await Upload.filter(id__in=stale, status=UploadStatus.ISSUED).update(status=UploadStatus.EXPIRING)
        # `expiring` also holds claims an earlier pass could not finish (storage was down).
        for upload in await Upload.filter(status=UploadStatus.EXPIRING).order_by("expires_at").limit(BATCH):
            if await self._clean(upload, report, multipart=True):
                await Upload.filter(id=upload.id, status=UploadStatus.EXPIRING).update(status=UploadStatus.EXPIRED)
                report.expired += 1
        # Promoted uploads, and those the virus scan refused (whose object is gone, and whose quarantine
        # a still-valid presign could have written to again).
        finished = [Promotion.PROMOTED, Promotion.REFUSED]
        for upload in await Upload.filter(
            status=UploadStatus.ATTACHED, promotion__in=finished, expires_at__lt=now - grace
        ).limit(BATCH):
            if await self._settle(upload, report):
                await Upload.filter(id=upload.id, promotion=upload.promotion).update(promotion=Promotion.SETTLED)
                report.settled += 1
        for upload in await Upload.filter(status=UploadStatus.DISCARDED).order_by("id").limit(BATCH):
            if await self._discard(upload, report):
                await Upload.filter(id=upload.id, status=UploadStatus.DISCARDED).update(status=UploadStatus.DELETED)
                report.discarded += 1
        return report

    async def _clean(self, upload: Upload, report: SweepReport, *, multipart: bool) -> bool:
        """A never-saved upload: everything under its quarantine and permanent prefixes."""
        try:
            if multipart and upload.multipart_upload_id and upload.key:
                if await self.storage.abort_multipart_upload(quarantine_key(upload.key), upload.multipart_upload_id):
                    report.aborted += 1
            keys = await self.storage.list_keys(quarantine_prefix(upload.table, upload.property_name, upload.token))
            keys += await self.storage.list_keys(key_prefix(upload.table, upload.property_name, upload.token))
            await self.storage.delete(keys)
        except AppError as exc:
            return self._failed(upload, report, exc)
        report.objects_deleted += len(keys)
        return True

    async def _settle(self, upload: Upload, report: SweepReport) -> bool:
        """A saved upload whose presign expired: whatever is left in its quarantine prefix."""
        try:
            keys = await self.storage.list_keys(quarantine_prefix(upload.table, upload.property_name, upload.token))
            await self.storage.delete(keys)
        except AppError as exc:
            return self._failed(upload, report, exc)
        report.objects_deleted += len(keys)
        return True

    async def _discard(self, upload: Upload, report: SweepReport) -> bool:
        """A released upload: its permanent object, versions (by their recorded keys and anything else
        under the prefix) and quarantine leftovers."""
        try:
            versions = [str(k) for k in await UploadVersion.filter(upload_id=upload.id).values_list("key", flat=True)]
            keys = await object_keys(self.storage, upload, versions)
            keys += await self.storage.list_keys(key_prefix(upload.table, upload.property_name, upload.token))
            keys = list(dict.fromkeys(keys))
            await self.storage.delete(keys)
        except AppError as exc:
            return self._failed(upload, report, exc)
        report.objects_deleted += len(keys)
        return True

    @staticmethod
    def _failed(upload: Upload, report: SweepReport, exc: AppError) -> bool:
        log.warning("sweep: could not clean upload %s now (%s); next pass retries", upload.id, exc.message)
        report.failed += 1
        return False


async def run_periodically(sweeper: Sweeper, interval: float | None = None) -> None:
    """Sweep forever, every `interval` seconds (SWEEP_INTERVAL by default); a failed pass is logged
    and the next one runs as usual. Cancel the task to stop."""
    pause = interval if interval is not None else sweeper.config.interval
    while True:
        try:
            report = await sweeper.run_once()
            if report.expired or report.discarded or report.failed or report.settled:
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
