"""Scan throughput of our clamd client (app/scanner.py) against ClamAV's own `clamdscan --stream`, and
the peak RSS of the process that scans.

    .venv/bin/python bench/scan.py [--rounds N] [--sizes 1,10,50] [--chunk-kib 1024]

One local clamd (app/embedded/clamd.py, the test signature database) serves both sides, so both pay the
same for clamd writing the stream to its temporary file and scanning it. For each size, one file of
random bytes whose first 16 bytes change before every scan (clamd answers a file it has found clean
before from its cache, without scanning); each round scans it once per side, sides interleaved:

- baseline: `clamdscan --stream --no-summary` of the file (INSTREAM over TCP from C; its wall time
  includes starting the process, as it costs a script that shells out to it);
- ours: `Clamd.scan` of the file streamed through an async chunked iterator (`--chunk-kib` per chunk,
  as the storage stream hands chunks to the worker), in a fresh subprocess per
  scan that first scans a few bytes (as a worker has scanned before), then reports the scan's wall
  time, its peak RSS (VmHWM) and its RSS before the scan, so that the interpreter and imports are not
  mistaken for the scan's cost.

Throughput is MB/s (10^6 bytes) of each side's median scan; the ratio is the median of the rounds'
ratios (a round's two scans run back to back, in alternating order). clamd's own scan dominates both,
so on a shared machine the CPU time each client spends per scan (median; clamdscan's includes its
start-up) is printed too: it does not drop when other processes take the cores.

Targets: ours at least 0.9x clamdscan at every size, and a peak RSS that does not grow with the file
(within 16 MB of the process before the scan).
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
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from app.embedded.clamd import EmbeddedClamd, start_clamd
from app.scanner import Clamd, ScanStatus

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
        Path("/proc/self/clear_refs").write_text("5")  # VmHWM from here on: the scan's peak
        seconds, cpu = runner.run(scan())
    peak = _status_kib("VmHWM")
    print(json.dumps({"seconds": seconds, "cpu": cpu, "rss_before_mb": before / 1024, "peak_mb": peak / 1024}))


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


HEADER = ("size", "clamdscan MB/s", "ours MB/s", "ratio", "CPU ms: clamdscan", "ours", "peak RSS", "before")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--sizes", default="1,10,50", help="file sizes in MiB, comma-separated (each < 100)")
    parser.add_argument("--chunk-kib", type=int, default=1024, help="chunk size of our stream")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-scan-") as tmp:
        clamd = start_clamd(Path(tmp) / "clamd")
        if clamd is None:
            raise SystemExit("clamd is not installed: apt-get install -y clamav-daemon clamav")
        try:
            print(f"clamd {clamd.address[0]}:{clamd.address[1]}, {args.rounds} rounds, our chunks {args.chunk_kib} KiB")
            print("{:>7} {:>15} {:>10} {:>6} {:>18} {:>5} {:>9} {:>8}".format(*HEADER))
            for size in (int(s) for s in args.sizes.split(",")):
                path = Path(tmp) / f"{size}mib.bin"
                path.write_bytes(os.urandom(size * MiB))
                results.append(measure(clamd, path, size, args.rounds, args.chunk_kib * 1024))
                print(results[-1].row())
                path.unlink()
        finally:
            clamd.stop()
    print(f"clamdscan's own start-up (clamdscan --version): {clamdscan_start_up() * 1000:.0f} ms per file")
    met = all(r.ratio >= RATIO_TARGET and r.growth <= RSS_GROWTH_TARGET_MB for r in results)
    target = f"ours >= {RATIO_TARGET}x clamdscan, peak RSS within {RSS_GROWTH_TARGET_MB} MB of before the scan"
    print(f"target ({target}): {'met' if met else 'NOT met'}")


if __name__ == "__main__":
    main()
