"""Live upload status at scale: thousands of concurrent subscriptions on one API process, against a
client polling once per second, in the same run.

    .venv/bin/python bench/subscriptions.py [--subscriptions 5000] [--per-connection 1] [--events 1000]
                                            [--rate 100] [--pollers 100]

One uvicorn process serves the API (bench/servers.py:api) on PostgreSQL, with its default live
settings (a ping every 15 s, a re-read of every followed upload every 10 s). A client process holds
SUBSCRIPTIONS subscriptions to `property_upload_changed` (PER_CONNECTION on each WebSocket; 1 is
one browser tab per upload, the worst case), each on its own record whose image has three pending
versions. This process plays a separate version worker: it marks a version ready (the UPDATE the
worker's `_build_one` commits) and announces it through `Events.publish`, i.e. a NOTIFY from another
process, as app/worker.py does.

1. Memory: the API process's RSS before and after the subscriptions are open (and their first event
   delivered), per subscription.
2. Latency of a subscription: from a version's commit to its event at the client, for EVENTS commits
   at RATE per second on subscribed records (p50, p99; target p99 < 100 ms).
3. The baseline, polling: POLLERS clients each asking for one record (`record(id) { property_upload
   { version_details } }`) once per second, while the same kind of commits happen on those records
   (not subscribed): the time from a commit to the poll that sees it, the requests, and the API's CPU.
4. The API's CPU (from /proc) while the subscriptions are idle, per event, and per poll request.
5. The machine's own delay in the same phase as 2: how late a process that only sleeps 5 ms at a
   time wakes up (on a shared machine, other work on the cores shows here and in every latency).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import multiprocessing
import os
import random
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import ROOT, app_env, cpu_seconds, database, make_bucket, moto_server, uvicorn

SUBSCRIPTION = """subscription($id: ID!) { property_upload_changed(record_id: $id, name: "image") {
  url file_name versions version_details { name status url width height } } }"""
POLL = """query($id: ID!) { record(id: $id) { property_upload(name: "image") {
  url versions version_details { name status url width height } } } }"""
VERSIONS = ("thumb", "medium", "large")
# Long enough for two keep-alive pings and three re-read sweeps per subscription.
IDLE_SECONDS = int(os.environ.get("BENCH_IDLE_SECONDS", "30"))
LATENCY_TARGET_MS = 100


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def percentile(values: Sequence[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def more_files() -> None:
    """Each WebSocket is a file descriptor at both ends; children inherit the raised limit."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


# -- the database: records whose image has three pending versions ------------------------------
async def seed(database_url: str, count: int) -> list[tuple[int, dict[str, int]]]:
    """`count` photos records, each with an attached public image and its three pending versions,
    as record_create leaves them; returns (record id, {version name: version id}) by record id."""
    import asyncpg

    conn = await asyncpg.connect(database_url.replace("postgres://", "postgresql://", 1))
    try:
        async with conn.transaction():
            records = await conn.fetch(
                """INSERT INTO records ("table", properties, created_at, updated_at)
                   SELECT 'photos', '{"caption": "bench"}', now(), now() FROM generate_series(1, $1) RETURNING id""",
                count,
            )
            uploads = await conn.fetch(
                """INSERT INTO uploads (token, "table", property_name, status, method, key, record_id, min_size,
                       max_size, content_types, acl, content_disposition, file_name, size, content_type, expires_at,
                       created_at, attached_at)
                   SELECT md5(random()::text || r), 'photos', 'image', 'attached', 'post',
                          'photos/image/' || md5(r::text) || '/bench.png', r, 0, 10485760, '[]', 'public', 'inline',
                          'bench.png', 4096, 'image/png', now() + interval '1 day', now(), now()
                   FROM unnest($1::bigint[]) AS r RETURNING id, record_id""",
                [r["id"] for r in records],
            )
            record_of = {u["id"]: u["record_id"] for u in uploads}
            versions = await conn.fetch(
                """INSERT INTO upload_versions (upload_id, name, key, status, attempts, updated_at)
                   SELECT u, n, 'photos/image/versions/' || u || '-' || n || '.webp', 'pending', 0, now()
                   FROM unnest($1::bigint[]) AS u CROSS JOIN unnest($2::text[]) AS n RETURNING id, upload_id, name""",
                list(record_of),
                list(VERSIONS),
            )
    finally:
        await conn.close()
    ids: dict[int, dict[str, int]] = {}
    for v in versions:
        ids.setdefault(record_of[v["upload_id"]], {})[v["name"]] = v["id"]
    return sorted(ids.items())


# -- the subscribers (their own process) -------------------------------------------------------
def subscribers_main(url: str, record_ids: list[int], per_connection: int, pipe: Connection) -> None:
    import uvloop

    more_files()
    uvloop.run(_subscribers(url, record_ids, per_connection, pipe))


async def _subscribers(url: str, record_ids: list[int], per_connection: int, pipe: Connection) -> None:
    from websockets.asyncio.client import connect
    from websockets.typing import Subprotocol

    first_ready: dict[str, float] = {}  # "record:version" -> when the client first saw it ready
    first_events = 0
    all_first = asyncio.Event()
    groups = [record_ids[i : i + per_connection] for i in range(0, len(record_ids), per_connection)]
    sockets: list[Any] = []
    errors: list[str] = []

    async def open_one(group: list[int]) -> Any:
        ws = await connect(url, subprotocols=[Subprotocol("graphql-transport-ws")], open_timeout=120, max_queue=None)
        sockets.append(ws)
        await ws.send('{"type":"connection_init"}')
        assert json.loads(await ws.recv())["type"] == "connection_ack"
        for rid in group:
            payload = {"query": SUBSCRIPTION, "variables": {"id": str(rid)}}
            await ws.send(json.dumps({"id": str(rid), "type": "subscribe", "payload": payload}))
        return ws

    async def follow(ws: Any) -> None:
        nonlocal first_events
        seen: set[str] = set()
        async for raw in ws:
            now = time.monotonic()
            message = json.loads(raw)
            kind = message["type"]
            if kind == "ping":
                await ws.send('{"type":"pong"}')
            elif kind == "next":
                rid = message["id"]
                if rid not in seen:
                    seen.add(rid)
                    first_events += 1
                    if first_events == len(record_ids):
                        all_first.set()
                for v in message["payload"]["data"]["property_upload_changed"]["version_details"]:
                    if v["status"] == "ready":
                        first_ready.setdefault(f"{rid}:{v['name']}", now)
            elif kind in ("error", "complete"):
                errors.append(raw if kind == "error" else "")

    started = time.monotonic()
    tasks: list[asyncio.Task[None]] = []
    try:
        for i in range(0, len(groups), 100):  # in waves, each once the previous one is connected
            wave = await asyncio.gather(*(open_one(g) for g in groups[i : i + 100]))
            tasks += [asyncio.create_task(follow(ws)) for ws in wave]
        await asyncio.wait_for(all_first.wait(), 300)
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which stops the run
        pipe.send(("failed", f"{len(sockets)} connected, then {exc!r}"))
        for task in tasks:
            task.cancel()
        return
    # The clients' own objects (5000 connections, their waiting coroutines replaced at every message)
    # made this process's collections, young ones too, stall every socket for up to 250 ms, which
    # showed as the server's latency: 5000 browsers do not share one collector. The run is short,
    # so this process keeps its garbage; its pauses are still reported (client_gc_pauses_during_events).
    gc.collect()
    gc.freeze()
    gc.disable()
    client_pauses: list[tuple[float, float, int]] = []  # as gc_pauses(): this process's own
    pause_started = [0.0]

    def watch_gc(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            pause_started[0] = time.perf_counter()
        elif (took := (time.perf_counter() - pause_started[0]) * 1000) >= 20:
            client_pauses.append((time.monotonic(), took, info["generation"]))

    gc.callbacks.append(watch_gc)
    pipe.send(("subscribed", time.monotonic() - started))
    await asyncio.get_running_loop().run_in_executor(None, pipe.recv)  # "report"
    pipe.send(("report", first_ready, [e for e in errors if e], len(sockets), client_pauses))
    await asyncio.get_running_loop().run_in_executor(None, pipe.recv)  # "stop"
    for ws in sockets:
        await ws.close()
    for task in tasks:
        task.cancel()


# -- how late the machine runs a process that asks for the CPU (a shared machine's own delay) -----
def lateness_main(seconds: float, pipe: Connection) -> None:
    """Sleep 5 ms at a time for `seconds`; send how late each wake-up was (ms). Nothing else runs in
    this process: its lateness is what the OS scheduler adds to any process in the same run."""
    late: list[float] = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        asked = time.monotonic()
        time.sleep(0.005)
        late.append((time.monotonic() - asked - 0.005) * 1000)
    pipe.send(late)


# -- this process: the version worker's commits, and the polling clients -------------------------
async def commit_versions(
    database_url: str, targets: list[tuple[int, int, str]], rate: float, pollers: dict[int, Any] | None = None
) -> dict[str, float]:
    """Mark each (record, version id, name) ready at `rate` per second and announce it like the
    worker does; returns when each commit returned ("record:version" -> monotonic time)."""
    from app import db
    from app.events import Events
    from app.models import UploadVersion

    orm = await db.connect(database_url)
    events = Events(database_url)
    await events.open()
    committed: dict[str, float] = {}
    try:
        start = time.monotonic()
        for i, (record_id, version_id, name) in enumerate(targets):
            await asyncio.sleep(max(0.0, start + i / rate - time.monotonic()))
            await UploadVersion.filter(id=version_id, status="pending").update(
                status="ready", width=200, height=200, size=3000, format="webp", updated_at=datetime.now(UTC)
            )
            committed[f"{record_id}:{name}"] = time.monotonic()
            events.publish(record_id, "image")
        await asyncio.sleep(2)  # the last events' way to the clients
    finally:
        await events.close()
        await db.disconnect(orm)
    return committed


async def poll(base: str, record_ids: list[int], seconds: float, seen: dict[str, float]) -> int:
    """Each record polled once per second by its own client (a keep-alive connection each), from a
    random phase; records when each version is first seen ready. Returns the requests made."""
    import httpx

    requests = 0

    async def poller(record_id: int) -> None:
        nonlocal requests
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            next_at = time.monotonic() + random.random()
            end = time.monotonic() + seconds
            while next_at < end:
                await asyncio.sleep(max(0.0, next_at - time.monotonic()))
                response = await client.post("/graphql", json={"query": POLL, "variables": {"id": str(record_id)}})
                now = time.monotonic()
                requests += 1
                upload = response.json()["data"]["record"]["property_upload"]
                for v in upload["version_details"]:
                    if v["status"] == "ready":
                        seen.setdefault(f"{record_id}:{v['name']}", now)
                next_at += 1.0

    await asyncio.gather(*(poller(r) for r in record_ids))
    return requests


def gc_pauses(log: Path) -> list[tuple[float, float, int]]:
    """(monotonic time it ended, milliseconds, generation) of each pause bench/gcwatch logged."""
    pauses = []
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith("GC-PAUSE "):
            fields = dict(item.split("=", 1) for item in line.split()[1:])
            pauses.append((float(fields["at"]), float(fields["ms"]), int(fields["gen"])))
    return pauses


def latencies_ms(committed: dict[str, float], seen: dict[str, float]) -> list[float]:
    missing = [k for k in committed if k not in seen]
    if missing:
        raise SystemExit(f"{len(missing)} committed versions never reached the client, e.g. {missing[:5]}")
    return [(seen[k] - t) * 1000 for k, t in committed.items()]


def summary(values: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(percentile(values, 50), 1),
        "p99_ms": round(percentile(values, 99), 1),
        "max_ms": round(max(values), 1),
        "mean_ms": round(statistics.fmean(values), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subscriptions", type=int, default=5000)
    parser.add_argument("--per-connection", type=int, default=1, help="subscriptions per WebSocket")
    parser.add_argument("--events", type=int, default=1000, help="version commits on subscribed records")
    parser.add_argument("--rate", type=float, default=100, help="commits per second")
    parser.add_argument("--pollers", type=int, default=100, help="clients polling once per second")
    args = parser.parse_args()
    if args.events > args.subscriptions * 2:
        raise SystemExit("--events: at most two versions per subscribed record (the third would complete it)")
    more_files()

    with moto_server() as storage, database("postgres") as database_url:
        make_bucket(storage, "bench")
        print(f"seeding {args.subscriptions + args.pollers} records...", file=sys.stderr)
        rows = asyncio.run(seed(database_url, args.subscriptions + args.pollers))
        subscribed, polled = rows[: args.subscriptions], rows[args.subscriptions :]
        env = app_env(storage, "bench", database_url) | {
            "LIVE_SUBSCRIPTIONS_PER_CALLER": "1000000",  # every client comes from one address
            "LIVE_SUBSCRIPTIONS_PER_CONNECTION": str(max(args.per_connection, 20)),
            "LIVE_MESSAGE_RATE": "10000",
            "LOG_LEVEL": "warning",
            # bench/gcwatch/sitecustomize.py logs the API's garbage collections of 20 ms or more.
            "PYTHONPATH": f"{Path(__file__).resolve().parent / 'gcwatch'}:{ROOT}",
            "BENCH_GC_LOG": "1",
        }
        log = Path(tempfile.gettempdir()) / f"bench-subscriptions-{os.getpid()}.log"
        with uvicorn("bench.servers:api", env, "/healthz", log) as (base, server):
            pid = server.pid
            ws_url = base.replace("http", "ws", 1) + "/graphql"
            rss_before = rss_mb(pid)
            ctx = multiprocessing.get_context("spawn")
            ours, theirs = ctx.Pipe()
            clients = ctx.Process(
                target=subscribers_main, args=(ws_url, [r for r, _ in subscribed], args.per_connection, theirs)
            )
            clients.start()
            try:
                print(f"opening {args.subscriptions} subscriptions...", file=sys.stderr)
                status = ours.recv()
                if status[0] != "subscribed":
                    raise SystemExit(f"the subscribers failed: {status[1]}; the API's log: {log}")
                opened_in = status[1]
                subscribed_at = time.monotonic()
                time.sleep(2)  # let the server settle (freed request garbage, the first re-read)
                rss_after = rss_mb(pid)

                print(f"idle for {IDLE_SECONDS} s...", file=sys.stderr)
                cpu0 = cpu_seconds(pid)
                time.sleep(IDLE_SECONDS)
                idle_cpu = (cpu_seconds(pid) - cpu0) / IDLE_SECONDS

                print(f"{args.events} commits at {args.rate}/s on subscribed records...", file=sys.stderr)
                order = [(r, ids[name], name) for name in ("thumb", "medium") for r, ids in subscribed]
                targets = order[: args.events]
                probe_end, probe_end_theirs = ctx.Pipe()
                probe = ctx.Process(target=lateness_main, args=(len(targets) / args.rate, probe_end_theirs))
                probe.start()
                cpu0, t0 = cpu_seconds(pid), time.monotonic()
                committed = asyncio.run(commit_versions(database_url, targets, args.rate))
                events_window = (t0, time.monotonic())
                events_seconds = events_window[1] - t0
                lateness = probe_end.recv()
                probe.join()
                events_cpu = cpu_seconds(pid) - cpu0 - idle_cpu * events_seconds
                ours.send("report")
                _, first_ready, errors, _sockets, client_pauses = ours.recv()
                pushed = latencies_ms(committed, first_ready)
                if os.environ.get("BENCH_DEBUG"):  # latency by commit order: spikes in time show a stall
                    print([round(x) for x in pushed], file=sys.stderr)

                print(f"{args.pollers} pollers at 1 request/s with commits on their records...", file=sys.stderr)
                poll_seconds = max(10.0, args.pollers / args.rate * 2 + 5)
                poll_targets = [(r, ids["thumb"], "thumb") for r, ids in polled]
                seen: dict[str, float] = {}

                async def polling_phase() -> tuple[dict[str, float], int]:
                    async with asyncio.TaskGroup() as group:
                        polling = group.create_task(poll(base, [r for r, _ in polled], poll_seconds, seen))
                        await asyncio.sleep(2)
                        commits = await commit_versions(database_url, poll_targets, args.pollers / (poll_seconds - 5))
                    return commits, polling.result()

                cpu0, t0 = cpu_seconds(pid), time.monotonic()
                poll_committed, requests = asyncio.run(polling_phase())
                poll_wall = time.monotonic() - t0
                poll_cpu = cpu_seconds(pid) - cpu0 - idle_cpu * poll_wall
                polled_latency = latencies_ms(poll_committed, seen)
            finally:
                ours.send("stop")
                clients.join(60)
                if clients.is_alive():
                    clients.kill()

    pauses = gc_pauses(log)
    if os.environ.get("BENCH_GC_DETAIL"):
        print(f"the API log: {log}", file=sys.stderr)
    else:
        log.unlink()

    def during_events(pauses: list[tuple[float, float, int]]) -> list[tuple[float, int]]:
        return [(ms, g) for at, ms, g in pauses if at >= events_window[0] and at - ms / 1000 <= events_window[1]]

    in_events = during_events(pauses)
    full = [ms for _, ms, g in pauses if g == 2]
    per_request_ms = poll_cpu / requests * 1000
    idle_per_sub_us = idle_cpu / args.subscriptions * 1e6
    per_event_ms = events_cpu / len(committed) * 1000
    result = {
        "subscriptions": args.subscriptions,
        "per_connection": args.per_connection,
        "opened_in_s": round(opened_in, 1),
        "api_rss_mb": {"before": round(rss_before, 1), "after": round(rss_after, 1)},
        "memory_per_subscription_kb": round((rss_after - rss_before) * 1024 / args.subscriptions, 1),
        "subscription_latency": {"events": len(pushed), "rate_per_s": args.rate, **summary(pushed)},
        # A process that only sleeps, in the same phase: what the machine's load adds to any wake-up.
        "scheduler_lateness": summary(lateness),
        # The API's garbage collections of 20 ms or more: a full one walks every live object.
        "api_gc_pauses_ms": {
            "during_events": [f"gen{g} {ms:.0f}" for ms, g in in_events],
            "full_collections": {"count": len(full), "max": round(max(full, default=0))},
            # Once every subscription is open: what a full pass over all of them costs, if one runs.
            "full_collections_while_subscribed": [round(ms) for at, ms, g in pauses if g == 2 and at >= subscribed_at],
            "young_collections_over_20ms": len(pauses) - len(full),
        },
        # The subscribers' own process: a pause there delays what it sees just as the server's would.
        "client_gc_pauses_during_events": [f"gen{g} {ms:.0f}" for ms, g in during_events(client_pauses)],
        "polling_latency": {"versions": len(polled_latency), **summary(polled_latency)},
        "api_cpu": {
            "idle_subscriptions_percent_of_a_core": round(idle_cpu * 100, 2),
            "idle_per_subscription_us_per_s": round(idle_per_sub_us, 2),
            "per_event_ms": round(per_event_ms, 3),
            "per_poll_request_ms": round(per_request_ms, 3),
        },
        "polling": {"clients": args.pollers, "requests": requests, "seconds": round(poll_wall, 1)},
        "errors": errors,
        # Following one upload for a second: a poller's request, against an idle subscription (its
        # pings and periodic re-read); an event costs per_event_ms once per change.
        "poll_over_idle_subscription_cpu": round(per_request_ms * 1000 / max(idle_per_sub_us, 0.01), 1),
        "target_p99_ms": LATENCY_TARGET_MS,
        "target_met": percentile(pushed, 99) < LATENCY_TARGET_MS,
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
