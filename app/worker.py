"""The worker: receive jobs from the queue (app/jobs.py), build image versions (app/versions.py),
scan quarantined files for viruses (app/scanning.py), and reconcile.

    python -m app.worker        (make worker)  standalone; any number can run at once
    RUN_WORKER=true             one runs inside the API process (make run sets it)
    WORKER_CONCURRENCY=N        jobs (images, scans) one worker handles at once; default: the CPU count

A standalone worker serves `/metrics` and `/healthz` on WORKER_METRICS_HOST:WORKER_METRICS_PORT
when the port is set (uvicorn in the worker's own event loop, so a stuck loop fails the probe).

Safety comes from the database, not from the queue: each version is claimed with a lease (see
app/versions.py; a scan likewise, app/scanning.py), so duplicate or redelivered messages and parallel
workers are harmless. The reconciler re-sends the jobs of uploads whose versions or scan stay pending
with no live lease, so a message lost between the commit and the queue, or a worker killed mid-job,
never leaves a version or a scan pending.
It only considers uploads saved well before the point the worker has consumed the queue up to
(`caught_up_to`), so a backlog is not mistaken for lost messages and doubled by re-sends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from app import metrics
from app.errors import AppError
from app.jobs import JobKind, scan_message, versions_message
from app.jobs import parse as parse_job
from app.logs import configure_logging
from app.queue import Message, Queue
from app.runtime import startup_objects_frozen
from app.scanning import Scans
from app.scanning import notice as scanning_notice
from app.services import Services
from app.settings import Settings, SettingsError
from app.sweep import housekeeping
from app.versions import Versions

log = logging.getLogger(__name__)

# On shutdown the jobs in progress get this long to finish before they are cancelled (their leases
# are then released and their messages made visible again).
SHUTDOWN_GRACE_SECONDS = 20.0
_QUEUE_ERROR_PAUSE = 2.0
# A scan job reaching a worker built without the scanning use case goes back for another worker.
_NOT_MINE_SECONDS = 60


class Worker:
    def __init__(
        self,
        settings: Settings,
        versions: Versions,
        queue: Queue,
        *,
        scans: Scans | None = None,
        periodic: Sequence[Callable[[], Coroutine[Any, Any, None]]] = (),
    ) -> None:
        self.settings = settings
        self.versions = versions
        self.queue = queue
        self.scans = scans
        # Other housekeeping loops that live as long as the worker (the clean-up sweep).
        self.periodic = periodic
        self._stop = asyncio.Event()
        # How far this worker has consumed the queue, in Unix seconds: the SentTimestamp of the newest
        # message it has taken, or when it last found the queue empty. None until its first poll.
        self.caught_up_to: float | None = None

    def stop(self) -> None:
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    async def run(self) -> None:
        background = [asyncio.create_task(self._reconcile_forever())]
        background += [asyncio.create_task(loop()) for loop in self.periodic]
        try:
            # WORKER_CONCURRENCY consumers, each receiving and handling one message at a time: to the
            # queue and the database they are that many workers, kept apart by the leases.
            async with asyncio.TaskGroup() as consumers:
                for _ in range(self.settings.worker_concurrency):
                    consumers.create_task(self._consume())
        finally:
            for task in background:
                task.cancel()
            for task in background:
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def _consume(self) -> None:
        while not self._stop.is_set():
            for message in await self.receive():
                if self._stop.is_set():
                    await self._quietly(self.queue.retry_later(message, 0))
                else:
                    await self.handle(message)

    async def _until_stopped(self, coro: asyncio.Task[list[Message]]) -> bool:
        """Wait for `coro` unless stop() comes first; True if it finished."""
        stopper: asyncio.Task[object] = asyncio.create_task(self._stop.wait())
        done, _ = await asyncio.wait([coro, stopper], return_when=asyncio.FIRST_COMPLETED)
        stopper.cancel()
        if coro not in done:
            coro.cancel()
            with contextlib.suppress(asyncio.CancelledError, AppError):
                await coro
            return False
        return True

    async def receive(self) -> list[Message]:
        """The next message (long poll), or none; moves `caught_up_to` forward."""
        s = self.settings
        asked = time.time()
        task = asyncio.create_task(self.queue.receive(1, s.queue_wait_seconds, s.version_lease_seconds))
        if not await self._until_stopped(task):
            return []
        try:
            messages = task.result()
        except AppError:
            await self._pause(_QUEUE_ERROR_PAUSE)  # logged by the adapter; wait rather than spin
            return []
        # An empty poll: everything sent before it was asked for has been taken (by some worker).
        # A server that does not report SentTimestamp leaves the old rule: RECONCILE_AFTER before now.
        sent = [asked if m.sent_at is None else m.sent_at for m in messages] or [asked]
        self.caught_up_to = max(self.caught_up_to or 0.0, *sent)
        return messages

    async def handle(self, message: Message) -> None:
        """One message: delete it when done, or make it visible again after a backoff."""
        # Queue lag of first deliveries only: a redelivered message keeps its first SentTimestamp, so
        # its age would count processing and deliberate backoff, not waiting for a free worker.
        if message.sent_at is not None and message.receive_count <= 1:
            metrics.observe_queue_lag(time.time() - message.sent_at)
        job = parse_job(message.body)
        if job is None:
            log.error("dropping malformed message %r", message.body[:100])
            await self._quietly(self.queue.delete(message))
        elif job.kind is JobKind.SCAN:
            await self._scan(job.upload_id, message)
        else:
            await self._versions(job.upload_id, message)

    async def _versions(self, upload_id: int, message: Message) -> None:
        started = time.monotonic()
        try:
            outcome = await self.versions.process(upload_id)
        except asyncio.CancelledError:
            await self._quietly(self.queue.retry_later(message, 0))
            raise
        except Exception:  # the database or a bug: never let one job stop the loop
            log.exception("upload %s: version job failed; it will be retried", upload_id)
            metrics.observe_version_job(time.monotonic() - started, ok=False, reason="exception")
            await self._quietly(self.queue.retry_later(message, self.versions.backoff(message.receive_count)))
            return
        final = outcome.retry_in is None
        ok = final and outcome.failed == 0
        reason = None if ok else ("failed" if final else "retry")
        metrics.observe_version_job(time.monotonic() - started, ok=ok, reason=reason, final=final)
        if outcome.retry_in is None:
            log.info("upload %s: %d version(s) built, %d failed", upload_id, outcome.built, outcome.failed)
            await self._quietly(self.queue.delete(message))
        else:
            await self._quietly(self.queue.retry_later(message, outcome.retry_in))

    async def _scan(self, upload_id: int, message: Message) -> None:
        if self.scans is None:
            log.error("upload %s: this worker does not scan; the scan job goes back to the queue", upload_id)
            await self._quietly(self.queue.retry_later(message, _NOT_MINE_SECONDS))
            return
        started = time.monotonic()
        try:
            outcome = await self.scans.process(upload_id, message.receive_count)
        except asyncio.CancelledError:
            await self._quietly(self.queue.retry_later(message, 0))
            raise
        except Exception:  # the database or a bug: never let one job stop the loop
            log.exception("upload %s: scan job failed; it will be retried", upload_id)
            metrics.observe_scan("error", time.monotonic() - started)
            await self._quietly(self.queue.retry_later(message, self.scans.backoff(message.receive_count)))
            return
        metrics.observe_scan(outcome.outcome, time.monotonic() - started, outcome.size)
        if outcome.retry_in is None:
            if outcome.outcome != "skipped":
                log.info("upload %s: scan %s", upload_id, outcome.outcome)
            await self._quietly(self.queue.delete(message))
        else:
            await self._quietly(self.queue.retry_later(message, outcome.retry_in))

    async def reconcile(self) -> int:
        """Re-send the jobs of uploads whose versions or scan are stuck pending; returns how many.

        Before this worker has polled the queue once it cannot tell a lost message from one still
        waiting, so it re-sends nothing."""
        if self.caught_up_to is None:
            return 0
        caught_up_to = datetime.fromtimestamp(self.caught_up_to, UTC)
        ids = await self.versions.stale_uploads(caught_up_to=caught_up_to)
        scans = await self.scans.stale_uploads(caught_up_to=caught_up_to) if self.scans is not None else []
        bodies = [versions_message(i) for i in ids] + [scan_message(i) for i in scans]
        if bodies:
            await self.queue.send(bodies)
            log.info("reconciler re-queued the versions of %d upload(s), the scans of %d", len(ids), len(scans))
        return len(bodies)

    async def _reconcile_forever(self) -> None:
        while not self._stop.is_set():
            try:
                await self.reconcile()
            except Exception:  # the queue or database is down: try again next round
                log.exception("reconciler round failed")
            await self._pause(self.settings.reconcile_interval)

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), seconds)

    @staticmethod
    async def _quietly(call: object) -> None:
        try:
            await call  # type: ignore[misc]
        except AppError:
            pass  # logged by the adapter; the message reappears after its visibility timeout anyway


async def stop_gracefully(worker: Worker, task: asyncio.Task[None]) -> None:
    """Let the jobs in hand finish (up to the grace period), then cancel; leases are released either way."""
    worker.stop()
    try:
        await asyncio.wait_for(asyncio.shield(task), SHUTDOWN_GRACE_SECONDS)
    except TimeoutError:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


# -- the standalone worker's HTTP endpoint -------------------------------------------------------
def scan_gauges(scans: Scans) -> Callable[[], Coroutine[Any, Any, None]]:
    """What a scrape of /metrics refreshes first: the files waiting for a scan, and whether clamd answers."""

    async def refresh() -> None:
        metrics.set_scanner_up(await scans.probe() == "ok")
        metrics.set_scans_pending(await scans.pending())  # the database down: the scrape answers all the same

    return refresh


def status_app(worker: Worker) -> Starlette:
    """`/metrics` from this process's registry (the jobs this worker ran) and `/healthz`: 200 while the
    worker takes jobs, 503 once it is shutting down."""

    async def healthz(request: Request) -> Response:
        if worker.stopping:
            return JSONResponse({"status": "stopping"}, status_code=503)
        return JSONResponse({"status": "ok"})

    scrape = metrics.endpoint(scan_gauges(worker.scans)) if worker.scans is not None else metrics.metrics_endpoint
    return Starlette(routes=[Route("/metrics", scrape), Route("/healthz", healthz)])


def listen(host: str, port: int) -> socket.socket:
    """Bind the status port before anything else starts, so a taken port stops the worker at once."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise SystemExit(
            f"WORKER_METRICS_PORT={port}: cannot listen on {host}:{port} ({exc.strerror or exc}); "
            "choose a free port, or 0 to serve no metrics"
        ) from None
    return sock


class _QuietServer(uvicorn.Server):
    """uvicorn as one more task in the worker's loop: the worker handles SIGTERM/SIGINT itself, so
    uvicorn must not install (and on exit re-raise) its own signal handlers."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@contextlib.asynccontextmanager
async def serving_status(worker: Worker, sock: socket.socket) -> AsyncIterator[None]:
    config = uvicorn.Config(status_app(worker), lifespan="off", access_log=False, log_config=None, log_level="warning")
    server = _QuietServer(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                task.result()
                raise SystemExit("the worker's metrics endpoint did not start")
            await asyncio.sleep(0.01)
        yield
    finally:
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await task
        sock.close()


async def main(settings: Settings) -> None:
    if not settings.queue_url:
        raise SystemExit("QUEUE_URL is not set: the worker needs the queue that the API sends its jobs to")
    host, port = settings.worker_metrics_host, settings.worker_metrics_port
    sock = listen(host, port) if port else None
    try:
        async with Services(settings) as services:
            queue = services.queue
            assert queue is not None
            worker = Worker(settings, services.versions, queue, scans=services.scans, periodic=housekeeping(services))
            if said := scanning_notice(settings, services.tables):
                log.log(*said)
            async with contextlib.AsyncExitStack() as stack:
                if sock is not None:
                    await stack.enter_async_context(serving_status(worker, sock))
                    log.info("worker metrics on http://%s:%d/metrics (health: /healthz)", host, port)
                task = asyncio.create_task(worker.run())
                loop = asyncio.get_running_loop()
                for sig in (signal.SIGTERM, signal.SIGINT):
                    loop.add_signal_handler(sig, worker.stop)
                log.info("worker %d listening on %s; sweeping every SWEEP_INTERVAL", os.getpid(), settings.queue_url)
                stack.enter_context(startup_objects_frozen())
                await task  # the status endpoint answers (503) until the job in hand is done
    finally:
        if sock is not None:
            sock.close()


def cli() -> None:
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        raise SystemExit(f"configuration error: {exc}") from None
    configure_logging(settings.log_format, settings.log_level)
    asyncio.run(main(settings))


if __name__ == "__main__":
    cli()
