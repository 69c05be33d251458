"""Use case: the virus scan of a file saved into a property with `scan: true` (one queue message,
`scan:<upload id>`, per upload: app/jobs.py).

The save verified the file, attached it to its record and left it in quarantine, unserved, with its
scan `pending` (app/uploads/saving.py). A job then:

1. claims the scan with a lease (`scan_lease_until`, a conditional UPDATE), so two workers never scan
   one file at once and a duplicate message waits for the lease instead of scanning again;
2. streams the quarantined object from storage to clamd, conditional on the ETag the save verified
   (storage refuses any other object) and one chunk at a time, never whole in memory: the verdict is
   about the very bytes that promotion then copies, under the same ETag condition;
3. commits the outcome (`_commit_verdict`, then `_ended`):
   - clean: promoted to the permanent key, then its versions are queued (app/uploads/promoting.py);
   - infected: `refused`, the signature kept in `scan_result`, the quarantined object deleted;
   - failed (clamd cannot scan it: over its StreamMaxLength or scan limits; or the file changed in
     storage after the save): `refused` with the reason. Never served either way.

A scanner (or storage) that cannot be reached leaves the scan pending: the message comes back after a
backoff, and the lease holds until then so that the reconciler does not send it twice. There is no
last attempt: an unscanned file is never served, and it is scanned once clamd is back. The reconciler
re-sends the scans whose message was lost (between the commit and the queue, or in the dead-letter
queue after too many receives).
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from tortoise.expressions import Q
from tortoise.queryset import QuerySet

from app.errors import ScannerUnavailable, StorageUnavailable
from app.keys import quarantine_key
from app.models import Upload, UploadVersion
from app.scanner import Clamd, ScanStatus, describe
from app.settings import Settings
from app.storage.base import PreconditionFailed, Storage
from app.tables import TableDef
from app.uploads import Promotion, PromotionResult, ScanState, Uploads, UploadStatus, utcnow

log = logging.getLogger(__name__)

# What one storage read hands to clamd: the scanner client sends it in pieces of at most 1 MiB.
CHUNK = 1024 * 1024
# Retries while the scanner is unreachable: at least a second apart (no busy loop against a dead
# clamd), at most five minutes (a scan resumes soon after clamd is back).
MIN_RETRY_SECONDS = 1
MAX_RETRY_SECONDS = 300
# A readiness probe or a metrics scrape waits this long for clamd's PONG.
PROBE_SECONDS = 2.0
CHANGED = "the file changed in storage after it was saved; upload it again"
_WAITING = (ScanState.PENDING, ScanState.CLEAN)  # clean: scanned, its promotion still to do
_RESULT_MAX = 1000


@dataclass(frozen=True)
class ScanOutcome:
    """What one job did. `outcome`: clean | infected | failed (a verdict now), unavailable (retry),
    promoted (an earlier clean verdict promoted now), skipped (nothing to do), busy (another worker
    holds the scan). `retry_in` None: the message is done; else make it visible again after that many
    seconds. `size`: bytes scanned."""

    outcome: str
    retry_in: int | None = None
    size: int = 0


class Scans:
    def __init__(
        self,
        settings: Settings,
        uploads: Uploads,
        storage: Storage,
        scanner: Clamd | None,
        *,
        clock: Callable[[], datetime] = utcnow,
        on_scanned: Callable[[Upload], Awaitable[None]] | None = None,
    ) -> None:
        self.settings = settings
        self.uploads = uploads
        self.storage = storage
        self.scanner = scanner
        self.clock = clock
        # Called once an outcome a reader can see is committed (promoted, infected, failed): the hook
        # for change notifications.
        self.on_scanned = on_scanned
        # Long enough for the slowest scan clamd answers in time; a scan that outlives its lease is
        # repeated by another worker at worst, and both commit the same verdict once.
        self.lease = timedelta(seconds=settings.version_lease_seconds + settings.clamd_scan_timeout)

    def backoff(self, attempts: int) -> int:
        delay = self.settings.version_retry_base_seconds * 2 ** max(attempts - 1, 0)
        return max(MIN_RETRY_SECONDS, min(delay, MAX_RETRY_SECONDS))

    # -- the job -----------------------------------------------------------------------------------
    async def process(self, upload_id: int, attempts: int = 1) -> ScanOutcome:
        """Scan one upload (and promote it when clean); `attempts`: how often its message was received."""
        upload = await Upload.get_or_none(id=upload_id)
        if upload is None or not _waiting(upload):
            return ScanOutcome("skipped")
        now = self.clock()
        claimed = (
            await _waiting_rows(upload_id)
            .filter(Q(scan_lease_until=None) | Q(scan_lease_until__lte=now))
            .update(scan_lease_until=now + self.lease)
        )
        if claimed != 1:
            return await self._busy(upload_id, now)
        retrying = False
        try:
            scanned: ScanOutcome | None = None
            if upload.scan_status == ScanState.PENDING:
                scanned = await self._scan(upload)
                if scanned.outcome != ScanState.CLEAN:
                    return scanned
            promoted = await self._promote(upload)
            return scanned or promoted
        except (ScannerUnavailable, StorageUnavailable) as exc:
            retrying = True
            return await self._retry(upload, attempts, exc)
        finally:
            if not retrying:  # done, failed or cancelled: the next message (or worker) may take it at once
                await Upload.filter(id=upload_id).update(scan_lease_until=None)

    async def _busy(self, upload_id: int, now: datetime) -> ScanOutcome:
        """Another worker scans it, or its retry is due later: come back once that lease is over."""
        holder = await Upload.get_or_none(id=upload_id)
        if holder is None or not _waiting(holder):
            return ScanOutcome("skipped")
        until = holder.scan_lease_until
        wait = math.ceil((until - now).total_seconds()) + 1 if until is not None else MIN_RETRY_SECONDS
        return ScanOutcome("busy", retry_in=max(MIN_RETRY_SECONDS, wait))

    async def _scan(self, upload: Upload) -> ScanOutcome:
        assert upload.key is not None and upload.etag is not None
        if self.scanner is None:
            raise ScannerUnavailable("no virus scanner is configured: set CLAMD_ADDRESS")
        chunks = self.storage.stream(quarantine_key(upload.key), CHUNK, if_match=upload.etag)
        try:
            result = await self.scanner.scan(chunks)
        except PreconditionFailed:
            await self._commit_verdict(upload, ScanState.FAILED, CHANGED)
            return ScanOutcome(ScanState.FAILED)
        state = {
            ScanStatus.CLEAN: ScanState.CLEAN,
            ScanStatus.INFECTED: ScanState.INFECTED,
            ScanStatus.FAILED: ScanState.FAILED,
        }[result.status]
        await self._commit_verdict(upload, state, result.detail)
        return ScanOutcome(state, size=result.size)

    async def _commit_verdict(self, upload: Upload, state: ScanState, detail: str | None) -> None:
        """The one place a verdict is written. Clean waits for its promotion; infected and failed are
        final: the upload is refused, its quarantined object deleted and its versions never built."""
        result = detail[:_RESULT_MAX] if detail else None
        changes: dict[str, object] = {"scan_status": state, "scan_result": result}
        if state != ScanState.CLEAN:
            changes["promotion"] = Promotion.REFUSED
        if await _waiting_rows(upload.id, ScanState.PENDING).update(**changes) != 1:
            return  # released by its record meanwhile: its discard removes everything
        upload.scan_status = state
        upload.scan_result = result  # type: ignore[assignment]  # Tortoise types a nullable TextField as str
        if state == ScanState.CLEAN:
            return
        upload.promotion = Promotion.REFUSED
        where = f"{upload.table}.{upload.property_name}"
        log.warning("upload %s (%s) refused by the virus scan: %s, %s", upload.id, where, state, detail)
        await UploadVersion.filter(upload_id=upload.id, status="pending").update(
            status="failed", lease_until=None, error=f"not built: the virus scan refused the file ({state})"
        )
        assert upload.key is not None
        await self.uploads.promoting.delete_quietly([quarantine_key(upload.key)])
        await self._ended(upload)

    async def _promote(self, upload: Upload) -> ScanOutcome:
        result = await self.uploads.promote(upload.id)
        if result is PromotionResult.SKIPPED:
            return ScanOutcome("skipped")
        # PROMOTED: now served (its versions are queued). CHANGED: the verified bytes left quarantine
        # after the scan; promote() discarded the upload, and its record no longer holds it.
        await self._ended(upload)
        return ScanOutcome("promoted" if result is PromotionResult.PROMOTED else ScanState.FAILED)

    async def _retry(self, upload: Upload, attempts: int, exc: ScannerUnavailable | StorageUnavailable) -> ScanOutcome:
        delay = self.backoff(attempts)
        await _waiting_rows(upload.id).update(scan_lease_until=self.clock() + timedelta(seconds=delay))
        log.warning("upload %s: scan postponed by %d s (attempt %d): %s", upload.id, delay, attempts, exc.message)
        return ScanOutcome("unavailable", retry_in=delay)

    async def _ended(self, upload: Upload) -> None:
        """A scan's outcome is committed and visible to readers (promoted, infected, failed)."""
        if self.on_scanned is None:
            return
        try:
            await self.on_scanned(upload)
        except Exception:
            log.exception("upload %s: could not announce the end of its scan", upload.id)

    # -- the reconciler and the probes -------------------------------------------------------------
    async def stale_uploads(self, limit: int = 1000, caught_up_to: datetime | None = None) -> list[int]:
        """Scans whose message was lost: saved, still waiting, and held by no lease, since a while
        before the point the queue has been consumed up to (see Worker.caught_up_to): a newer one
        most likely still has its message waiting behind a backlog."""
        now = self.clock()
        horizon = min(now, caught_up_to) if caught_up_to is not None else now
        before = horizon - timedelta(seconds=self.settings.reconcile_after)
        rows = (
            await Upload.filter(
                status=UploadStatus.ATTACHED,
                promotion=Promotion.PENDING,
                scan_status__in=list(_WAITING),
                attached_at__lt=before,
            )
            .filter(Q(scan_lease_until=None) | Q(scan_lease_until__lt=before))
            .order_by("id")
            .limit(limit)
            .values_list("id", flat=True)
        )
        return [int(str(r)) for r in rows]

    async def pending(self) -> int:
        """Saved files still waiting for their scan (or for their promotion once clean)."""
        return await Upload.filter(
            status=UploadStatus.ATTACHED, promotion=Promotion.PENDING, scan_status__in=list(_WAITING)
        ).count()

    async def probe(self) -> str | None:
        """The scanner's state for /readyz and /metrics: None without one, "ok" when it answers PING,
        else "unavailable: <why>" (without its address, which only the logs carry)."""
        if self.scanner is None:
            return None
        try:
            async with asyncio.timeout(PROBE_SECONDS):
                await self.scanner.ping()
        except TimeoutError:
            return f"unavailable: no answer to PING within {PROBE_SECONDS:g} s"
        except ScannerUnavailable as exc:
            return f"unavailable: {exc.message.removeprefix(self.scanner.where).strip()}"
        return "ok"


def _waiting(upload: Upload) -> bool:
    return (
        upload.status == UploadStatus.ATTACHED
        and upload.promotion == Promotion.PENDING
        and upload.scan_status in _WAITING
        and bool(upload.key)
        and bool(upload.etag)
    )


def _waiting_rows(upload_id: int, *states: ScanState) -> QuerySet[Upload]:
    return Upload.filter(
        id=upload_id,
        status=UploadStatus.ATTACHED,
        promotion=Promotion.PENDING,
        scan_status__in=list(states or _WAITING),
    )


def scanned_properties(tables: Mapping[str, TableDef]) -> list[str]:
    return [f"{t.name}.{p.name}" for t in tables.values() for p in t.upload_properties() if p.scanned]


def notice(settings: Settings, tables: Mapping[str, TableDef]) -> tuple[int, str] | None:
    """What the start-up says about scanning (log level, message); None when no property scans."""
    scanned = scanned_properties(tables)
    if not scanned:
        return None
    names = ", ".join(scanned)
    if settings.clamd_address is None:
        return logging.WARNING, (
            f"no virus scanner (CLAMD_ADDRESS is not set): files saved into {names} stay pending,"
            " never served, until CLAMD_ADDRESS names a clamd"
        )
    if not settings.queue_url:
        return logging.WARNING, (
            f"QUEUE_URL is not set: files saved into {names} stay pending, never served, until a queue"
            " and a worker scan them"
        )
    return logging.INFO, f"files saved into {names} are scanned by clamd at {describe(settings.clamd_address)}"
