"""Scan throughput against ClamAV's own `clamdscan --stream`, and the peak RSS of the process that scans,
in two parts (both by default; `--part client` or `--part worker` for one):

    .venv/bin/python bench/scan.py [--rounds N] [--sizes 1,10,50] [--chunk-kib 1024] [--part client|worker|both]

One local clamd (app/embedded/clamd.py, the test signature database) serves every side, so all pay the
same for clamd writing the stream to its temporary file and scanning it. For each size, one file of
random bytes whose first 16 bytes change before every scan (clamd answers a file it has found clean
before from its cache, without scanning); each round scans it once per side, sides interleaved.
The baseline is `clamdscan --stream --no-summary` of the file from the local disk (INSTREAM over TCP
from C; its wall time includes starting the process, as it costs a script that shells out to it).

Part 1, the client: `Clamd.scan` (app/scanner.py) of the file streamed through an async chunked
iterator (`--chunk-kib` per chunk, as the storage stream hands chunks to the worker), in a fresh
subprocess per scan that first scans a few bytes (as a worker has scanned before), then reports the
scan's wall time, its peak RSS (VmHWM) and its RSS before the scan, so that the interpreter and imports
are not mistaken for the scan's cost.

Part 2, the worker: the scan job itself (app/scanning.py `Scans.process`, what `python -m app.worker`
runs for a `scan:<id>` message) in one long-lived worker process on the real services: the file is in
quarantine on SeaweedFS (`make run`'s storage), saved as a pending upload in SQLite; the job claims
it, streams it from storage to clamd (1 MiB reads, conditional on its ETag), commits the verdict and
promotes the file (a server-side copy, then the quarantined object is deleted). Reported: the
stream-to-clamd part (`scan`) and the whole job, as MB/s, and the worker's peak RSS during each job
(VmHWM reset before it) against its RSS before. Putting the file into storage is not timed.

Throughput is MB/s (10^6 bytes) of each side's median; a ratio is the median of the rounds' ratios
(a round's scans run back to back, in alternating order). clamd's own scan dominates every side, so on
a shared machine the CPU time each client spends per scan (median; clamdscan's includes its start-up)
is printed too: it does not drop when other processes take the cores.

Targets: the client and the worker's scan at least 0.9x clamdscan at every size, and a peak RSS that
does not grow with the file (within 16 MB of the process before the scan or job).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from app.embedded.clamd import EmbeddedClamd, start_clamd
from app.keys import quarantine_key
from app.scanner import Clamd, ScanResult, ScanStatus

MiB = 1024 * 1024
RATIO_TARGET = 0.9
RSS_GROWTH_TARGET_MB = 16


async def file_chunks(path: Path, chunk: int) -> AsyncIterator[bytes]:
    """The file's chunks, read straight from the page cache: the cheapest source, so that the CPU time
    measured is the client's."""
    with path.open("rb") as file:
        while data := file.read(chunk):
            yield data


def _status_kib(field: str) -> int:
    line = next(x for x in Path("/proc/self/status").read_text().splitlines() if x.startswith(field + ":"))
    return int(line.split()[1])


def child(host: str, port: str, path: str, chunk: str) -> None:
    """One scan in a fresh process, after a first scan of a few bytes (a worker has scanned before: its
    event loop's thread pool and connections are warm). Prints {seconds, rss_before_mb, peak_mb}."""
    scanner = Clamd((host, int(port)), scan_timeout=600)
    size = Path(path).stat().st_size

    async def warm_up() -> None:
        async def few() -> AsyncIterator[bytes]:
            yield b"warm-up"

        await scanner.scan(few())

    async def scan() -> tuple[float, float]:
        started, cpu = time.perf_counter(), time.process_time()
        result = await scanner.scan(file_chunks(Path(path), int(chunk)))
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        if result.status is not ScanStatus.CLEAN or result.size != size:
            raise SystemExit(f"unexpected verdict {result}")
        return elapsed, cpu

    with asyncio.Runner() as runner:
        runner.run(warm_up())
        before = _status_kib("VmRSS")
        reset_peak()  # VmHWM from here on: the scan's peak
        seconds, cpu = runner.run(scan())
    peak = _status_kib("VmHWM")
    print(json.dumps({"seconds": seconds, "cpu": cpu, "rss_before_mb": before / 1024, "peak_mb": peak / 1024}))


def reset_peak() -> None:
    Path("/proc/self/clear_refs").write_text("5")  # Linux: VmHWM starts again from VmRSS


def make_unique(path: Path) -> None:
    """New first bytes: clamd caches the digests of clean files and answers a rescan without scanning."""
    with path.open("r+b") as file:
        file.write(os.urandom(16))


def ours(clamd: EmbeddedClamd, path: Path, chunk: int) -> dict[str, float]:
    host, port = clamd.address
    command = [sys.executable, __file__, "--child", host, str(port), str(path), str(chunk)]
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return dict(json.loads(out))


def clamdscan(clamd: EmbeddedClamd, path: Path) -> tuple[float, float]:
    """Wall and CPU seconds of one `clamdscan --stream`."""
    command = ["clamdscan", "--stream", "--no-summary", f"--config-file={clamd.home / 'clamd.conf'}", str(path)]
    usage, started = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    elapsed, after = time.perf_counter() - started, resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0 or not done.stdout.strip().endswith("OK"):
        raise SystemExit(f"clamdscan failed ({done.returncode}): {done.stdout}{done.stderr}")
    return elapsed, after.ru_utime + after.ru_stime - usage.ru_utime - usage.ru_stime


def clamdscan_start_up() -> float:
    """clamdscan's fixed cost per file: starting it, without a scan (`--version`)."""
    runs = []
    for _ in range(5):
        started = time.perf_counter()
        subprocess.run(["clamdscan", "--version"], check=True, capture_output=True)
        runs.append(time.perf_counter() - started)
    return statistics.median(runs)


@dataclass
class Rounds:
    """Each side's measurements of one file size."""

    size_mib: int
    base: list[float] = field(default_factory=list)  # clamdscan wall seconds
    base_cpu: list[float] = field(default_factory=list)
    mine: list[float] = field(default_factory=list)
    mine_cpu: list[float] = field(default_factory=list)
    peaks: list[float] = field(default_factory=list)  # MB
    befores: list[float] = field(default_factory=list)  # MB

    def rate(self, seconds: list[float]) -> float:
        return self.size_mib * MiB / 1e6 / statistics.median(seconds)

    @property
    def ratio(self) -> float:
        """The median of each round's ratio: the two scans of a round ran back to back."""
        return statistics.median(base / mine for base, mine in zip(self.base, self.mine, strict=True))

    @property
    def growth(self) -> float:
        return max(self.peaks) - statistics.median(self.befores)

    def row(self) -> str:
        cpu = statistics.median(self.base_cpu) * 1000, statistics.median(self.mine_cpu) * 1000
        return (
            f"{self.size_mib:>4} MiB {self.rate(self.base):>15.1f} {self.rate(self.mine):>10.1f} {self.ratio:>5.2f}x"
            f" {cpu[0]:>18.0f} {cpu[1]:>5.0f} {max(self.peaks):>6.1f} MB {statistics.median(self.befores):>5.1f} MB"
        )


def measure(clamd: EmbeddedClamd, path: Path, size_mib: int, rounds: int, chunk: int) -> Rounds:
    measured = Rounds(size_mib)

    def baseline() -> None:
        make_unique(path)
        seconds, cpu = clamdscan(clamd, path)
        measured.base.append(seconds)
        measured.base_cpu.append(cpu)

    def mine() -> None:
        make_unique(path)
        result = ours(clamd, path, chunk)
        measured.mine.append(result["seconds"])
        measured.mine_cpu.append(result["cpu"])
        measured.peaks.append(result["peak_mb"])
        measured.befores.append(result["rss_before_mb"])

    # Alternating which side goes first, so that neither always meets a busier moment of the machine.
    for number in range(rounds):
        for side in (baseline, mine) if number % 2 == 0 else (mine, baseline):
            side()
    return measured


# -- part 2: the worker's scan job ------------------------------------------------------------------
BUCKET = "bench-scan"


class TimedScanner:
    """The worker's clamd client, timing the part of each job that streams the file to clamd."""

    def __init__(self, inner: Clamd) -> None:
        self.inner = inner
        self.where = inner.where
        self.last = 0.0

    async def ping(self) -> None:
        await self.inner.ping()

    async def scan(self, chunks: AsyncIterable[bytes]) -> ScanResult:
        started = time.perf_counter()
        try:
            return await self.inner.scan(chunks)
        finally:
            self.last = time.perf_counter() - started


async def worker_jobs() -> None:
    """The worker process: for each permanent key read from stdin (its file already in quarantine), a
    saved upload pending its scan, then the scan job as the worker runs it; one JSON line per job."""
    from app.models import Upload
    from app.services import Services
    from app.settings import Settings
    from app.uploads import Promotion, ScanState, UploadStatus

    async with Services(Settings.from_env()) as services:
        assert services.scanner is not None
        timed = TimedScanner(services.scanner)
        services.scans.scanner = timed  # type: ignore[assignment]
        while key := (await asyncio.to_thread(sys.stdin.readline)).strip():
            head = await services.storage.head(quarantine_key(key))
            assert head is not None, key
            now = datetime.now(UTC)
            upload = await Upload.create(
                token=key.split("/")[2], table="documents", property_name="resume", status=UploadStatus.ATTACHED,
                key=key, max_size=head.size, acl="private", content_disposition="attachment", size=head.size,
                content_type="application/octet-stream", etag=head.etag, expires_at=now + timedelta(hours=1),
                attached_at=now, promotion=Promotion.PENDING, scan_status=ScanState.PENDING,
            )  # fmt: skip
            before = _status_kib("VmRSS")
            reset_peak()  # VmHWM from here on: the job's peak
            started, cpu = time.perf_counter(), time.process_time()
            outcome = await services.scans.process(upload.id)
            elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
            peak = _status_kib("VmHWM")
            if outcome.outcome != "clean" or outcome.size != head.size:
                raise SystemExit(f"unexpected outcome {outcome}")
            result = {"seconds": elapsed, "scan": timed.last, "cpu": cpu, "rss_before_mb": before / 1024,
                      "peak_mb": peak / 1024}  # fmt: skip
            print(json.dumps(result), flush=True)


@dataclass
class Worker:
    """A worker process on SeaweedFS and SQLite, scanning with `clamd`; `job(path)` puts the file into
    quarantine (not timed) and has the worker scan it."""

    process: subprocess.Popen[str]
    s3: Any

    def job(self, path: Path) -> dict[str, float]:
        key = f"documents/resume/{uuid.uuid4().hex}/{path.name}"
        self.s3.upload_file(str(path), BUCKET, quarantine_key(key))
        stdin, stdout = self.process.stdin, self.process.stdout
        assert stdin is not None and stdout is not None
        stdin.write(key + "\n")
        stdin.flush()
        line = stdout.readline()
        if not line:
            raise SystemExit(f"the worker exited ({self.process.wait()})")
        return dict(json.loads(line))


@contextmanager
def worker(clamd: EmbeddedClamd, log: IO[bytes]) -> Iterator[Worker]:
    # Imported here: the clients of part 1 run in processes that must not carry boto3 and the ORM.
    import boto3
    from botocore.config import Config

    from bench.harness import app_env, database, make_bucket, seaweedfs_server

    host, port = clamd.address
    with seaweedfs_server() as store, database("sqlite") as url:
        make_bucket(store.url, BUCKET, store)
        env = app_env(store.url, BUCKET, url, store) | {"CLAMD_ADDRESS": f"{host}:{port}", "LOG_LEVEL": "WARNING"}
        process = subprocess.Popen(
            [sys.executable, __file__, "--worker-child"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=log, text=True, env=env,
        )  # fmt: skip
        s3 = boto3.client(
            "s3", endpoint_url=store.url, region_name="us-east-1", aws_access_key_id=store.access_key_id,
            aws_secret_access_key=store.secret_access_key, config=Config(signature_version="s3v4"),
        )  # fmt: skip
        try:
            yield Worker(process, s3)
        finally:
            assert process.stdin is not None
            process.stdin.close()  # an empty line: the worker stops
            process.wait(30)


@dataclass
class WorkerRounds:
    size_mib: int
    base: list[float] = field(default_factory=list)  # clamdscan wall seconds
    base_cpu: list[float] = field(default_factory=list)
    scan: list[float] = field(default_factory=list)  # the worker's stream from storage to clamd
    job: list[float] = field(default_factory=list)  # the worker's whole job
    job_cpu: list[float] = field(default_factory=list)
    peaks: list[float] = field(default_factory=list)
    befores: list[float] = field(default_factory=list)

    def rate(self, seconds: list[float]) -> float:
        return self.size_mib * MiB / 1e6 / statistics.median(seconds)

    def ratio(self, seconds: list[float]) -> float:
        return statistics.median(base / mine for base, mine in zip(self.base, seconds, strict=True))

    @property
    def growth(self) -> float:
        return max(self.peaks) - statistics.median(self.befores)

    def row(self) -> str:
        cpu = statistics.median(self.base_cpu) * 1000, statistics.median(self.job_cpu) * 1000
        return (
            f"{self.size_mib:>4} MiB {self.rate(self.base):>15.1f} {self.rate(self.scan):>8.1f}"
            f" {self.ratio(self.scan):>5.2f}x {self.rate(self.job):>7.1f} {self.ratio(self.job):>5.2f}x"
            f" {cpu[0]:>18.0f} {cpu[1]:>5.0f} {max(self.peaks):>7.1f} MB {statistics.median(self.befores):>6.1f} MB"
        )


def measure_worker(clamd: EmbeddedClamd, running: Worker, path: Path, size_mib: int, rounds: int) -> WorkerRounds:
    measured = WorkerRounds(size_mib)

    def baseline() -> None:
        make_unique(path)
        seconds, cpu = clamdscan(clamd, path)
        measured.base.append(seconds)
        measured.base_cpu.append(cpu)

    def mine() -> None:
        make_unique(path)
        result = running.job(path)
        measured.scan.append(result["scan"])
        measured.job.append(result["seconds"])
        measured.job_cpu.append(result["cpu"])
        measured.peaks.append(result["peak_mb"])
        measured.befores.append(result["rss_before_mb"])

    for number in range(rounds):
        for side in (baseline, mine) if number % 2 == 0 else (mine, baseline):
            side()
    return measured


WORKER_HEADER = (
    "size", "clamdscan MB/s", "scan MB/s", "ratio", "job MB/s", "ratio", "CPU ms: clamdscan", "job", "peak RSS",
    "before",
)  # fmt: skip


def run_worker_part(clamd: EmbeddedClamd, tmp: Path, sizes: list[int], rounds: int) -> list[WorkerRounds]:
    results = []
    with (tmp / "worker.log").open("wb") as log, worker(clamd, log) as running:
        warm = tmp / "warm.bin"
        warm.write_bytes(os.urandom(4096))
        running.job(warm)  # as any worker has scanned before
        print(f"\nthe worker's scan job (storage: SeaweedFS; {rounds} rounds)")
        print("{:>7} {:>15} {:>8} {:>6} {:>7} {:>6} {:>18} {:>5} {:>10} {:>9}".format(*WORKER_HEADER))
        for size in sizes:
            path = tmp / f"{size}mib.bin"
            path.write_bytes(os.urandom(size * MiB))
            results.append(measure_worker(clamd, running, path, size, rounds))
            print(results[-1].row())
            path.unlink()
    return results


HEADER = ("size", "clamdscan MB/s", "ours MB/s", "ratio", "CPU ms: clamdscan", "ours", "peak RSS", "before")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--sizes", default="1,10,50", help="file sizes in MiB, comma-separated (each < 100)")
    parser.add_argument("--chunk-kib", type=int, default=1024, help="chunk size of our stream (part 1)")
    parser.add_argument("--part", choices=("client", "worker", "both"), default="both")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    parser.add_argument("--worker-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    if args.worker_child:
        asyncio.run(worker_jobs())
        return
    sizes = [int(s) for s in args.sizes.split(",")]
    clients: list[Rounds] = []
    workers: list[WorkerRounds] = []
    with tempfile.TemporaryDirectory(prefix="bench-scan-") as tmp:
        clamd = start_clamd(Path(tmp) / "clamd")
        if clamd is None:
            raise SystemExit("clamd is not installed: apt-get install -y clamav-daemon clamav")
        try:
            print(f"clamd {clamd.address[0]}:{clamd.address[1]}, {args.rounds} rounds")
            if args.part in ("client", "both"):
                print(f"\nour client (app/scanner.py) from a local file, {args.chunk_kib} KiB chunks")
                print("{:>7} {:>15} {:>10} {:>6} {:>18} {:>5} {:>9} {:>8}".format(*HEADER))
                for size in sizes:
                    path = Path(tmp) / f"{size}mib.bin"
                    path.write_bytes(os.urandom(size * MiB))
                    clients.append(measure(clamd, path, size, args.rounds, args.chunk_kib * 1024))
                    print(clients[-1].row())
                    path.unlink()
            if args.part in ("worker", "both"):
                workers = run_worker_part(clamd, Path(tmp), sizes, args.rounds)
        finally:
            clamd.stop()
    print(f"clamdscan's own start-up (clamdscan --version): {clamdscan_start_up() * 1000:.0f} ms per file")
    met = all(r.ratio >= RATIO_TARGET and r.growth <= RSS_GROWTH_TARGET_MB for r in clients) and all(
        r.ratio(r.scan) >= RATIO_TARGET and r.growth <= RSS_GROWTH_TARGET_MB for r in workers
    )
    target = (
        f"client and worker scan >= {RATIO_TARGET}x clamdscan, peak RSS within {RSS_GROWTH_TARGET_MB} MB of"
        " before the scan"
    )
    print(f"target ({target}): {'met' if met else 'NOT met'}")


if __name__ == "__main__":
    main()
