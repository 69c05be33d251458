"""Scale-out: two API processes and two standalone version workers against PostgreSQL and moto,
many concurrent clients doing full upload cycles; then checks that nothing was lost.

    .venv/bin/python bench/scaleout.py [--seconds 60] [--clients 200] [--image 64x64]

Each phase gets a fresh PostgreSQL database (bench_scaleout_<pid>_<phase> on BENCH_POSTGRES_URL's
server, migrated, dropped afterwards), a fresh moto server for S3 and another for SQS (separate
processes, as S3 and SQS are separate services), a bucket and a queue with its dead-letter queue:

- baseline: ONE API process (uvicorn, one worker process, uvloop + httptools) and ONE worker;
- scale-out: TWO API processes on different ports and TWO workers (`python -m app.worker`), all on
  the same database, bucket and QUEUE_URL; RUN_WORKER=false so the APIs build nothing themselves.

Every client loops for `--seconds`: `image_presign_url` (table photos, property image, image/jpeg),
POST the form and the JPEG to storage as a browser does, `record_create` with the resulting URL, and
`record(id)` back. Clients are spread round-robin over the phase's APIs; a cycle in flight at the
deadline completes (and is verified) but only cycles ended within the window count for cycles/s.
Afterwards the script waits for every version to be built (`--drain-timeout`), then verifies from
the database: every record whose `record_create` succeeded exists (and no others), every upload is
attached, and every version is `ready` (none pending or failed). It prints cycles/s, latency
percentiles per step, errors by step and kind, how long the versions took to drain, the workers' own
/metrics (jobs, queue lag), messages left in the queue, and the CPU seconds and run-queue wait of
each role, with the machine's CPU pressure. It exits 1 if anything is off, including any warning or
error (other than the expected anonymous-mode notice) in a process's log.

The abuse limits are per caller, and in anonymous mode every client here is the same caller, so the
bench raises them as bench/harness.py does for every benchmark (PRESIGN_RATE_PER_MINUTE=100000,
MAX_PENDING_UPLOADS=1000000): what is measured is the system, not the limiter. Everything else keeps
its default (database pool, storage client pool, lease, reconciler), so the figures are those of a
default deployment.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import tempfile
import time
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import uvloop
from prometheus_client.parser import text_string_to_metric_families

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.queue import Queue, create_queue
from app.settings import Settings
from bench.harness import app_env, database, make_bucket, moto_process, uvicorn, version_worker
from bench.versions import make_photo

PRESIGN = """mutation { image_presign_url(options: {model_property: {model_schema_name: "photos",
  property_name: "image"}, content_type: "image/jpeg"}) { upload_url upload_url_payload key } }"""
CREATE = """mutation($url: String) { record_create(record: {table: "photos",
  properties: [{name: "image", value: $url}]}) { id } }"""
QUERY = """query($id: ID!) { record(id: $id) { id image: property_upload(name: "image") { url size } } }"""
STEPS = ("presign", "upload", "create", "query")
# The processes log at WARNING; this start-up warning is expected here (the bench has no auth).
EXPECTED_LOG_LINES = ("ANONYMOUS MODE",)
CLK_TCK = os.sysconf("SC_CLK_TCK")


class StepError(Exception):
    """One step of a cycle failed; `kind` says how (GraphQL code, HTTP status, exception type)."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


@dataclass
class Load:
    """What the clients saw."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: {s: [] for s in (*STEPS, "cycle")})
    errors: Counter[str] = field(default_factory=Counter)
    created: set[int] = field(default_factory=set)
    cycles: int = 0
    in_window: int = 0  # cycles that ended before the deadline: the throughput figure
    window: float = 0.0  # the load's duration (--seconds)
    seconds: float = 0.0  # until the last cycle in flight at the deadline ended

    @property
    def rate(self) -> float:
        return self.in_window / self.window if self.window else 0.0


async def gql(http: aiohttp.ClientSession, api: str, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    async with http.post(f"{api}/graphql", json={"query": query, "variables": variables}) as response:
        if response.status != 200:
            raise StepError(f"HTTP {response.status}")
        body = await response.json()
    if body.get("errors"):
        raise StepError(str(body["errors"][0].get("extensions", {}).get("code", "GRAPHQL_ERROR")))
    data: dict[str, Any] = body["data"]
    return data


async def cycle(http: aiohttp.ClientSession, api: str, image: bytes, name: str, load: Load, deadline: float) -> None:
    step = "presign"
    started = time.perf_counter()
    mark = started
    try:
        presigned = (await gql(http, api, PRESIGN, {}))["image_presign_url"]
        load.latencies[step].append(time.perf_counter() - mark)

        step, mark = "upload", time.perf_counter()
        form = aiohttp.FormData()
        for key, value in presigned["upload_url_payload"].items():
            form.add_field(key, value)
        form.add_field("file", image, filename=name, content_type="image/jpeg")
        async with http.post(presigned["upload_url"], data=form) as response:
            await response.read()
            if response.status != 201:
                raise StepError(f"HTTP {response.status}")
        load.latencies[step].append(time.perf_counter() - mark)

        step, mark = "create", time.perf_counter()
        url = f"{presigned['upload_url'].rstrip('/')}/{quote(presigned['key'].replace('${filename}', name))}"
        record_id = int((await gql(http, api, CREATE, {"url": url}))["record_create"]["id"])
        load.created.add(record_id)
        load.latencies[step].append(time.perf_counter() - mark)

        step, mark = "query", time.perf_counter()
        record = (await gql(http, api, QUERY, {"id": str(record_id)}))["record"]
        if record is None or record["image"] is None or record["image"]["size"] != len(image):
            raise StepError("wrong record")
        load.latencies[step].append(time.perf_counter() - mark)
    except StepError as exc:
        load.errors[f"{step}: {exc.kind}"] += 1
        return
    except (aiohttp.ClientError, TimeoutError) as exc:
        load.errors[f"{step}: {type(exc).__name__}: {exc}"[:100]] += 1
        return
    load.latencies["cycle"].append(time.perf_counter() - started)
    load.cycles += 1
    load.in_window += time.monotonic() <= deadline


async def run_clients(apis: list[str], clients: int, seconds: float, image: bytes) -> Load:
    load = Load()
    connector = aiohttp.TCPConnector(limit=0)  # one keep-alive connection per client and host
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
        started = time.monotonic()
        deadline = started + seconds

        async def client(number: int) -> None:
            api = apis[number % len(apis)]
            await asyncio.sleep(random.random() * 0.5)  # no thundering herd on the first request
            n = 0
            while time.monotonic() < deadline:
                n += 1
                await cycle(http, api, image, f"c{number}-{n}.jpg", load, deadline)

        await asyncio.gather(*(client(i) for i in range(clients)))
        load.window, load.seconds = seconds, time.monotonic() - started
    return load


# -- after the load ------------------------------------------------------------------------------
async def _pg(url: str) -> Any:
    import asyncpg

    return await asyncpg.connect(url.replace("postgres://", "postgresql://", 1))


async def drain(database_url: str, limit: float) -> float | None:
    """Seconds until no version is pending, or None if some still are after `limit` seconds."""
    conn = await _pg(database_url)
    try:
        started = time.monotonic()
        while True:
            pending = await conn.fetchval("SELECT count(*) FROM upload_versions WHERE status = 'pending'")
            if pending == 0:
                return time.monotonic() - started
            if time.monotonic() - started > limit:
                return None
            await asyncio.sleep(0.5)
    finally:
        await conn.close()


@dataclass
class Verdict:
    records: int
    lost: int
    unexpected: int
    uploads_attached: int
    versions: dict[str, int]
    attempts: dict[int, int]


async def verify(database_url: str, created: set[int]) -> Verdict:
    conn = await _pg(database_url)
    try:
        ids = {r["id"] for r in await conn.fetch("SELECT id FROM records")}
        attached = await conn.fetchval("SELECT count(*) FROM uploads WHERE status = 'attached'")
        versions = {r["status"]: r["n"] for r in await conn.fetch(
            "SELECT status, count(*) AS n FROM upload_versions GROUP BY status"
        )}  # fmt: skip
        attempts = {r["attempts"]: r["n"] for r in await conn.fetch(
            "SELECT attempts, count(*) AS n FROM upload_versions GROUP BY attempts"
        )}  # fmt: skip
    finally:
        await conn.close()
    return Verdict(
        records=len(ids),
        lost=len(created - ids),
        unexpected=len(ids - created),
        uploads_attached=attached,
        versions=versions,
        attempts=attempts,
    )


@dataclass
class WorkerMetrics:
    """The workers' own /metrics, summed over the workers."""

    jobs: Counter[str] = field(default_factory=Counter)  # by outcome
    job_seconds: float = 0.0
    failures: float = 0.0
    lag_count: float = 0.0
    lag_sum: float = 0.0
    lag_buckets: Counter[float] = field(default_factory=Counter)  # cumulative count by upper bound

    def lag_bound(self, q: float) -> float:
        """The upper bound of the bucket that holds the q-th quantile: the histogram's resolution."""
        for bound in sorted(self.lag_buckets):
            if self.lag_buckets[bound] >= q * self.lag_count:
                return bound
        return float("nan")


async def scrape(bases: list[str]) -> WorkerMetrics:
    out = WorkerMetrics()
    async with aiohttp.ClientSession() as http:
        for base in bases:
            async with http.get(f"{base}/metrics") as response:
                text = await response.text()
            for family in text_string_to_metric_families(text):
                for s in family.samples:
                    if s.name == "uploads_version_job_duration_seconds_count":
                        out.jobs[s.labels["outcome"]] += int(s.value)
                    elif s.name == "uploads_version_job_duration_seconds_sum":
                        out.job_seconds += s.value
                    elif s.name == "uploads_version_job_failures_total":
                        out.failures += s.value
                    elif s.name == "uploads_queue_lag_seconds_count":
                        out.lag_count += s.value
                    elif s.name == "uploads_queue_lag_seconds_sum":
                        out.lag_sum += s.value
                    elif s.name == "uploads_queue_lag_seconds_bucket":
                        out.lag_buckets[float(s.labels["le"])] += s.value
    return out


async def queue_depth(settings: Settings, queue_url: str) -> int:
    """Messages still in the queue once every version is built: ids the reconciler re-sent while
    they were only waiting behind the backlog (harmless duplicates, see docs/versions.md, "The reconciler")."""
    queue = Queue(settings, queue_url)
    await queue.start()
    try:
        names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        attributes = (await queue.client.get_queue_attributes(QueueUrl=queue_url, AttributeNames=names))["Attributes"]
    finally:
        await queue.close()
    return sum(int(attributes.get(name, 0)) for name in names)


def cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return 0.0  # gone meanwhile
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


async def postgres_backends(database_url: str) -> list[int]:
    """The server processes serving this phase's database (its pools), to count their CPU."""
    conn = await _pg(database_url)
    try:
        rows = await conn.fetch(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    finally:
        await conn.close()
    return [int(r["pid"]) for r in rows]


def run_queue_wait(pid: int) -> float:
    """Seconds the process's live threads spent runnable but waiting for a CPU (schedstat)."""
    total = 0
    for stat in Path(f"/proc/{pid}/task").glob("*/schedstat"):
        try:
            total += int(stat.read_text().split()[1])
        except (FileNotFoundError, IndexError, ValueError):
            continue  # the thread ended meanwhile
    return total / 1e9


def cpu_pressure() -> float:
    """Seconds during which some runnable task waited for a CPU, machine-wide (PSI), 0 if unknown."""
    try:
        line = Path("/proc/pressure/cpu").read_text().splitlines()[0]
    except (FileNotFoundError, IndexError):
        return 0.0
    return int(line.rsplit("total=", 1)[1]) / 1e6


class CpuMeter:
    """CPU seconds and run-queue wait by role between snapshots, per process so that processes may
    come and go; and the machine's CPU pressure."""

    def __init__(self) -> None:
        self.last: dict[str, dict[int, tuple[float, float]]] = {}
        self.pressure = cpu_pressure()

    def take(self, pids: dict[str, list[int]]) -> tuple[dict[str, float], dict[str, float], float]:
        now = {role: {pid: (cpu_seconds(pid), run_queue_wait(pid)) for pid in ps} for role, ps in pids.items()}
        cpu, wait = {}, {}
        for role, seen in now.items():
            before = self.last.get(role, {})
            cpu[role] = sum(c - before.get(pid, (0.0, 0.0))[0] for pid, (c, _) in seen.items())
            wait[role] = sum(w - before.get(pid, (0.0, 0.0))[1] for pid, (_, w) in seen.items())
        pressure = cpu_pressure()
        self.last, spent_pressure, self.pressure = now, pressure - self.pressure, pressure
        return cpu, wait, spent_pressure


# -- one phase -----------------------------------------------------------------------------------
@dataclass
class Phase:
    name: str
    apis: int
    workers: int
    load: Load = field(default_factory=Load)
    drained_in: float | None = None
    verdict: Verdict | None = None
    worker_metrics: WorkerMetrics = field(default_factory=WorkerMetrics)
    cpu: dict[str, float] = field(default_factory=dict)
    logged: dict[str, int] = field(default_factory=dict)
    queue_left: int = 0
    wait: dict[str, float] = field(default_factory=dict)  # run-queue wait during the load, by role
    pressure: float = 0.0  # machine-wide CPU pressure during the load


def run_phase(phase: Phase, args: argparse.Namespace, image: bytes, logs: Path) -> None:
    runner = asyncio.Runner(loop_factory=uvloop.new_event_loop)
    tag = f"{os.getpid()}_{phase.name.replace('-', '')}"
    with (
        database("postgres", f"bench_scaleout_{tag}") as database_url,
        moto_process() as (storage, s3_proc),
        moto_process() as (sqs, sqs_proc),
        ExitStack() as stack,
        runner,
    ):
        bucket = f"scaleout-{tag.replace('_', '-')}"
        make_bucket(storage, bucket)
        env = app_env(storage, bucket, database_url)
        settings = Settings.from_env(env)
        queue_url = runner.run(create_queue(settings, sqs, f"versions-{tag}"))
        env |= {"QUEUE_URL": queue_url, "RUN_WORKER": "false", "LOG_LEVEL": "WARNING"}
        apis = [
            stack.enter_context(uvicorn("bench.servers:api", env, "/healthz", logs / f"{phase.name}-api{i}.log"))
            for i in range(phase.apis)
        ]
        workers = [
            stack.enter_context(version_worker(env, logs / f"{phase.name}-worker{i}.log")) for i in range(phase.workers)
        ]

        def pids() -> dict[str, list[int]]:
            return {
                "API": [p.pid for _, p in apis],
                "workers": [p.pid for _, p in workers],
                "moto S3": [s3_proc.pid],
                "moto SQS": [sqs_proc.pid],
                "postgres": runner.run(postgres_backends(database_url)),
                "load generator": [os.getpid()],
            }

        meter = CpuMeter()
        meter.take(pids())
        print(f"  {phase.name}: {phase.apis} API + {phase.workers} worker(s), {args.seconds:g} s of load", flush=True)
        phase.load = runner.run(run_clients([b for b, _ in apis], args.clients, args.seconds, image))
        cpu, wait, phase.pressure = meter.take(pids())
        phase.cpu |= {f"{role} (load)": v for role, v in cpu.items()}
        phase.wait = wait
        phase.drained_in = runner.run(drain(database_url, args.drain_timeout))
        cpu, _, _ = meter.take(pids())
        phase.cpu |= {f"{role} (drain)": v for role, v in cpu.items() if role != "load generator"}
        phase.verdict = runner.run(verify(database_url, phase.load.created))
        phase.worker_metrics = runner.run(scrape([b for b, _ in workers]))
        phase.queue_left = runner.run(queue_depth(settings, queue_url))
        stack.close()  # stop the processes (their logs are complete) before the database goes
    for log in sorted(logs.glob(f"{phase.name}-*.log")):
        text = log.read_text(errors="replace").splitlines()
        lines = [line for line in text if line.strip() and not any(e in line for e in EXPECTED_LOG_LINES)]
        phase.logged[log.stem] = len(lines)
        if lines:
            print(f"    {log.name}: {len(lines)} line(s) at WARNING or above; first: {lines[0][:300]}")


# -- report --------------------------------------------------------------------------------------
def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


def report(phases: list[Phase], args: argparse.Namespace, image: bytes, load_avg: tuple[float, ...]) -> bool:
    width = 36
    cols = [f"{p.name} ({p.apis} API, {p.workers} wkr)" for p in phases]
    print()
    print(f"{'':{width}}" + "".join(f"{c:>30}" for c in cols))

    def row(label: str, cells: list[str]) -> None:
        print(f"{label:{width}}" + "".join(f"{c:>30}" for c in cells))

    row("cycles completed", [f"{p.load.cycles:,}" for p in phases])
    row("cycles/s (ended in window)", [f"{p.load.rate:,.1f}" for p in phases])
    row("last cycle ended after (s)", [f"{p.load.seconds:.1f}" for p in phases])
    for step in (*STEPS, "cycle"):
        row(
            f"{step} p50/p95/p99 ms",
            ["/".join(f"{pct(p.load.latencies[step], q) * 1000:.0f}" for q in (50, 95, 99)) for p in phases],
        )
    row("errors", [str(sum(p.load.errors.values())) for p in phases])
    for kind in sorted({k for p in phases for k in p.load.errors}):
        row(f"  {kind}", [str(p.load.errors.get(kind, 0)) for p in phases])
    ok = True
    for label, get in (
        ("records created (client)", lambda p: f"{len(p.load.created):,}"),
        ("records in the database", lambda p: f"{p.verdict.records:,}"),
        ("lost / unexpected", lambda p: f"{p.verdict.lost} / {p.verdict.unexpected}"),
        ("uploads attached", lambda p: f"{p.verdict.uploads_attached:,}"),
        ("versions by status", lambda p: ", ".join(f"{k} {v:,}" for k, v in sorted(p.verdict.versions.items()))),
        ("claims per version", lambda p: ", ".join(f"{k}: {v:,}" for k, v in sorted(p.verdict.attempts.items()))),
        ("drained after the load", lambda p: "TIMEOUT" if p.drained_in is None else f"{p.drained_in:.1f} s"),
        (
            "versions built/s (overall)",
            lambda p: f"{p.verdict.versions.get('ready', 0) / (p.load.seconds + (p.drained_in or 0)):.1f}",
        ),
        ("queue messages left", lambda p: f"{p.queue_left:,}"),
        ("worker jobs by outcome", lambda p: ", ".join(f"{k} {v:,}" for k, v in sorted(p.worker_metrics.jobs.items()))),
        (
            "worker job mean (ms)",
            lambda p: f"{1000 * p.worker_metrics.job_seconds / max(1, sum(p.worker_metrics.jobs.values())):.0f}",
        ),
        (
            "queue lag mean, p50, p95 (s)",
            lambda p: (
                f"{p.worker_metrics.lag_sum / max(1, p.worker_metrics.lag_count):.1f}, "
                f"<={p.worker_metrics.lag_bound(0.5):g}, <={p.worker_metrics.lag_bound(0.95):g}"
            ),
        ),
    ):
        row(label, [get(p) for p in phases])
    for p in phases:
        v = p.verdict
        assert v is not None
        created = len(p.load.created)
        if (
            p.load.errors
            or v.lost
            or v.unexpected
            or v.records != created
            or v.uploads_attached != created
            or v.versions != ({"ready": 3 * created} if created else {})
            or p.drained_in is None
            or p.worker_metrics.failures
            or any(p.logged.values())
        ):
            ok = False
    for role in sorted({k for p in phases for k in p.cpu}):
        row(f"CPU s: {role}", [f"{p.cpu.get(role, 0):.1f}" for p in phases])
    row("API CPU ms per cycle", [f"{1000 * p.cpu['API (load)'] / max(1, p.load.cycles):.1f}" for p in phases])
    row(
        "worker CPU ms per job",
        [
            f"{1000 * (p.cpu['workers (load)'] + p.cpu['workers (drain)']) / max(1, sum(p.worker_metrics.jobs.values())):.0f}"  # noqa: E501
            for p in phases
        ],
    )
    row(
        "all CPU s per second of load",
        [f"{sum(v for k, v in p.cpu.items() if k.endswith('(load)')) / p.load.seconds:.2f}" for p in phases],
    )
    for role in sorted({k for p in phases for k in p.wait}):
        row(f"waiting for a CPU s: {role}", [f"{p.wait.get(role, 0):.1f}" for p in phases])
    row("CPU pressure (PSI some) %", [f"{100 * p.pressure / p.load.seconds:.0f}" for p in phases])
    print()
    if len(phases) == 2 and phases[0].load.in_window:
        a, b = (p.load.rate for p in phases)
        print(f"scale-out / baseline cycles/s: {b / a:.2f}x")
    print(f"load average before: {' '.join(f'{x:.2f}' for x in load_avg)}; after: "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}; {os.cpu_count()} CPUs")  # fmt: skip
    print("verdict: " + ("no errors, no lost records, every version ready" if ok else "PROBLEMS (see above)"))
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--image", default="64x64", help="JPEG size WxH (the photos table needs >= 1 KiB)")
    parser.add_argument("--drain-timeout", type=float, default=900)
    parser.add_argument("--phases", default="baseline,scale-out", help="baseline, scale-out or both")
    args = parser.parse_args()
    width, height = (int(x) for x in args.image.split("x"))
    image = make_photo(width, height)
    if len(image) < 1024:
        raise SystemExit(f"a {args.image} JPEG is {len(image)} bytes; the photos table needs at least 1 KiB")
    plan = {"baseline": Phase("baseline", 1, 1), "scale-out": Phase("scale-out", 2, 2)}
    phases = [plan[name] for name in args.phases.split(",")]
    load_avg = os.getloadavg()
    print(
        f"scale-out bench: {args.clients} clients for {args.seconds:g} s per phase; photos/image, "
        f"{width}x{height} JPEG of {len(image):,} B; PostgreSQL; moto S3 and moto SQS on loopback"
    )
    with tempfile.TemporaryDirectory(prefix="scaleout-logs-") as folder:
        for phase in phases:
            run_phase(phase, args, image, Path(folder))
        ok = report(phases, args, image, load_avg)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
