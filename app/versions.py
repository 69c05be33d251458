"""Use case: build the pending image versions of one upload (one queue message = one upload id).

One message per upload rather than per version: the original is downloaded and decoded once for
all its versions, and a save sends one message whatever the number of versions. Each
version is still claimed on its own (a conditional UPDATE that takes a lease), so two workers never
build the same version at once, and a redelivered message finds nothing left to do.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from tortoise.expressions import F, Q

from app.errors import AppError
from app.events import Publish
from app.imaging import ImageRejected, Prepared, prepare
from app.models import Upload, UploadVersion
from app.settings import Settings
from app.storage.base import ObjectHeaders, Storage
from app.tables import TableDef
from app.uploads import Promotion, UploadStatus, utcnow
from app.version_spec import VersionSpec

log = logging.getLogger(__name__)

MAX_RETRY_DELAY = 3600


@dataclass(frozen=True)
class Outcome:
    """`retry_in` None: the message is done (delete it); else make it visible again after that many seconds."""

    built: int = 0
    failed: int = 0
    retry_in: int | None = None


@dataclass(frozen=True)
class _Result:
    """One version's fate: built, failed for good (the row says why), or `retry_reason` (storage trouble)."""

    built: bool = False
    retry_reason: str | None = None


class Versions:
    def __init__(
        self,
        settings: Settings,
        tables: dict[str, TableDef],
        storage: Storage,
        clock: Callable[[], datetime] = utcnow,
        publish: Publish | None = None,
    ) -> None:
        self.settings = settings
        # Announces each version that became ready or failed to live subscribers (app/events.py).
        self.publish: Publish = publish or (lambda record_id, prop: None)
        self.tables = tables
        self.storage = storage
        self.clock = clock
        self.lease = timedelta(seconds=settings.version_lease_seconds)
        self.max_attempts = settings.version_max_attempts

    def backoff(self, attempts: int) -> int:
        return min(self.settings.version_retry_base_seconds * 2 ** max(attempts - 1, 0), MAX_RETRY_DELAY)

    def specs(self, upload: Upload) -> dict[str, VersionSpec]:
        table = self.tables.get(upload.table)
        pdef = table.properties.get(upload.property_name) if table else None
        return {s.name: s for s in pdef.upload_options().versions} if pdef and pdef.is_upload else {}

    async def process(self, upload_id: int) -> Outcome:
        upload = await Upload.get_or_none(id=upload_id)
        if upload is None or upload.status != UploadStatus.ATTACHED or not upload.key:
            return Outcome()  # deleted or replaced meanwhile: nothing to build
        if upload.promotion == Promotion.PENDING:
            return Outcome()  # still in quarantine: versions are built from the promoted original
        if await self._give_up_exhausted(upload_id):
            self._announce(upload)
        claimed = await self._claim(upload_id)
        if not claimed:
            return Outcome()  # all ready/failed, or another worker holds them (the reconciler covers a crash)
        try:
            return await self._build(upload, claimed)
        finally:
            # Cancelled or crashed mid-way: hand back what is still ours so another worker can take it now.
            await UploadVersion.filter(id__in=[v.id for v in claimed], status="pending").update(
                lease_until=None, updated_at=self.clock()
            )
            # Covers what changed along the way without an announcement of its own (failures, retries).
            self._announce(upload)

    def _announce(self, upload: Upload) -> None:
        if upload.record_id is not None:
            self.publish(upload.record_id, upload.property_name)

    async def _give_up_exhausted(self, upload_id: int) -> int:
        now = self.clock()
        return await (
            UploadVersion.filter(upload_id=upload_id, status="pending", attempts__gte=self.max_attempts)
            .filter(Q(lease_until=None) | Q(lease_until__lt=now))
            .update(
                status="failed", lease_until=None, error=f"gave up after {self.max_attempts} attempts", updated_at=now
            )
        )

    async def _claim(self, upload_id: int) -> list[UploadVersion]:
        """Take a lease on each free pending version; the WHERE makes the claim atomic per row."""
        now = self.clock()
        candidates = await UploadVersion.filter(upload_id=upload_id, status="pending").order_by("id")
        claimed = []
        for v in candidates:
            count = (
                await UploadVersion.filter(id=v.id, status="pending", attempts=v.attempts)
                .filter(Q(lease_until=None) | Q(lease_until__lt=now))
                .update(lease_until=now + self.lease, attempts=F("attempts") + 1, updated_at=now)
            )
            if count == 1:
                v.attempts += 1
                claimed.append(v)
        return claimed

    async def _build(self, upload: Upload, claimed: Sequence[UploadVersion]) -> Outcome:
        assert upload.key is not None
        try:
            source = await self.storage.get(upload.key)
        except AppError as exc:
            return await self._transient(claimed, f"could not read the original: {exc.message}")
        specs = self.specs(upload)
        try:
            # One decode for all the versions (see app.imaging.prepare), off the event loop.
            prepared = await asyncio.to_thread(prepare, source, [specs[v.name] for v in claimed if v.name in specs])
        except ImageRejected as exc:
            await self._fail(claimed, exc.reason)
            return Outcome(failed=len(claimed))
        info = prepared.info
        if (upload.width, upload.height) != (info.width, info.height):
            await Upload.filter(id=upload.id).update(width=info.width, height=info.height)
        # The versions are rendered side by side (libvips releases the GIL; one WebP encode uses
        # one core), and each is stored and marked ready as soon as it is done: a thumbnail does
        # not wait for the large version.
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(self._build_one(upload, prepared, v, specs.get(v.name))) for v in claimed]
        results = [task.result() for task in tasks]
        built = sum(r.built for r in results)
        failed = sum(not r.built and r.retry_reason is None for r in results)
        unstored = [(v, r.retry_reason) for v, r in zip(claimed, results, strict=True) if r.retry_reason]
        retry_in = None
        if unstored:
            outcome = await self._transient([v for v, _ in unstored], unstored[0][1])
            failed, retry_in = failed + outcome.failed, outcome.retry_in
        await self._drop_if_discarded(upload, [v.key for v in claimed])
        return Outcome(built=built, failed=failed, retry_in=retry_in)

    async def _build_one(
        self, upload: Upload, prepared: Prepared, v: UploadVersion, spec: VersionSpec | None
    ) -> _Result:
        if spec is None:
            where = f"{upload.table}.{upload.property_name}"
            await self._fail([v], f"version {v.name!r} is no longer declared on {where}")
            self._announce(upload)
            return _Result()
        try:
            rendered = await asyncio.to_thread(prepared.render, spec)
        except ImageRejected as exc:
            await self._fail([v], exc.reason)
            self._announce(upload)
            return _Result()
        try:
            headers = ObjectHeaders(
                rendered.content_type, "inline", upload.cache_control, public=upload.acl == "public"
            )
            await self.storage.put(v.key, rendered.data, headers)
        except AppError as exc:
            return _Result(retry_reason=f"could not store the version: {exc.message}")
        await UploadVersion.filter(id=v.id, status="pending").update(
            status="ready",
            lease_until=None,
            error=None,
            width=rendered.width,
            height=rendered.height,
            size=len(rendered.data),
            format=rendered.format,
            updated_at=self.clock(),
        )
        # Each version as soon as it is ready: a thumbnail does not wait for the large version.
        self._announce(upload)
        return _Result(built=True)

    async def _drop_if_discarded(self, upload: Upload, keys: list[str]) -> None:
        """The record may have been replaced or deleted while we rendered. Its clean-up ran after its
        commit; checking after our puts means either it saw our objects or we see its status."""
        if not await Upload.filter(id=upload.id, status=UploadStatus.ATTACHED).exists():
            try:
                await self.storage.delete(keys)
            except AppError:
                log.warning("could not delete versions of discarded upload %s; left in storage: %s", upload.id, keys)

    async def _transient(self, versions: Sequence[UploadVersion], reason: str) -> Outcome:
        """Storage trouble: retry later with backoff, unless a version has used up its attempts."""
        exhausted = [v for v in versions if v.attempts >= self.max_attempts]
        await self._fail(exhausted, f"gave up after {self.max_attempts} attempts: {reason}")
        retry = [v for v in versions if v.attempts < self.max_attempts]
        if not retry:
            return Outcome(failed=len(exhausted))
        await UploadVersion.filter(id__in=[v.id for v in retry], status="pending").update(
            lease_until=None, error=reason, updated_at=self.clock()
        )
        log.warning("versions %s will be retried: %s", [v.name for v in retry], reason)
        return Outcome(failed=len(exhausted), retry_in=self.backoff(max(v.attempts for v in retry)))

    async def _fail(self, versions: Sequence[UploadVersion], reason: str) -> None:
        if versions:
            await UploadVersion.filter(id__in=[v.id for v in versions], status="pending").update(
                status="failed", lease_until=None, error=reason[:1000], updated_at=self.clock()
            )

    async def stale_uploads(self, limit: int = 1000, caught_up_to: datetime | None = None) -> list[int]:
        """Uploads attached a while ago that still have a pending version nobody holds: their message
        was lost (between the commit and the queue) or their worker died.

        "A while ago" is RECONCILE_AFTER before now, or before `caught_up_to` when that is earlier:
        how far the queue has been consumed (see Worker.caught_up_to). An upload saved after that
        point most likely still has its message waiting behind a backlog, so re-sending it would
        only add a duplicate to the backlog."""
        now = self.clock()
        horizon = min(now, caught_up_to) if caught_up_to is not None else now
        rows = (
            await UploadVersion.filter(
                status="pending",
                upload__status=UploadStatus.ATTACHED,
                upload__attached_at__lt=horizon - timedelta(seconds=self.settings.reconcile_after),
            )
            .exclude(upload__promotion=Promotion.PENDING)
            .filter(Q(lease_until=None) | Q(lease_until__lt=now))
            .limit(limit)
            .values_list("upload_id", flat=True)
        )
        return sorted({int(str(r)) for r in rows})
