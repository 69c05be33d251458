"""Presign throughput: the GraphQL mutation against a bare Starlette endpoint doing the same work, and
the cost of the shared rate limit (its buckets in the database, PRESIGN_RATE_STORE=database, the
default) against buckets in process memory (PRESIGN_RATE_STORE=process), in the same run.

Run: .venv/bin/python bench/presign.py [--db sqlite|postgres] [--connections 32] [--duration 10]
Needs `wrk` (Debian: apt-get install -y wrk). Starts a moto server and three single-worker uvicorn
processes (uvloop, httptools), each on a freshly migrated database of its own: the real app
(`bench.servers:api`, logging JSON access lines at INFO like `make run`), the same with in-memory rate
buckets, and the bare endpoint (`bench.servers:bare`). wrk loads one at a time from its own process over
loopback, taking turns for `--rounds` rounds so that all see the same changes in machine load; the best
run of each is reported, with every run and the load average.

The load comes from many callers, as a deployment sees it: auth is on (HS256) and each request carries
the bearer token of one of `--callers` subjects in turn, so the per-caller limits (rate, pending cap)
run with their default settings and each caller's pending-upload check reads that caller's uploads
only. After each server's runs the script checks that every request wrote its pending upload (GraphQL
errors come back with status 200, which wrk would count as successes).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import jwt

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.harness import app_env, cpu_seconds, database, make_bucket, moto_server, uvicorn

MUTATION = """mutation { image_presign_url(options: {model_property: {model_schema_name: "photos",
  property_name: "image"}, content_type: "image/png", file_name: "photo.png"}) {
  upload_url upload_url_payload method key url expires_at max_size content_types } }"""
BARE = {"table": "photos", "property_name": "image", "content_type": "image/png", "file_name": "photo.png"}

# Each wrk thread walks the token list from a random start, one token per request.
LUA = """local body = {body}
local tokens = {{ {tokens} }}
local i = math.random(#tokens)
request = function()
  i = i % #tokens + 1
  return wrk.format("POST", nil, {{["Content-Type"] = "application/json",
                                   ["Authorization"] = "Bearer " .. tokens[i]}}, body)
end
"""


def tokens(secret: str, callers: int) -> list[str]:
    exp = int(time.time()) + 3600
    return [jwt.encode({"sub": f"bench-{i}", "exp": exp}, secret, algorithm="HS256") for i in range(callers)]


def wrk(url: str, body: str, connections: int, duration: int, auth: list[str], pid: int) -> dict[str, float]:
    """One wrk run; also the server's CPU time per answered request over the run."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(LUA.format(body=json.dumps(body), tokens=", ".join(json.dumps(t) for t in auth)))
    cpu = cpu_seconds(pid)
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "--latency", "-s", script.name, url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    cpu = cpu_seconds(pid) - cpu
    Path(script.name).unlink()
    if "Non-2xx" in out or "Socket errors" in out:
        raise SystemExit(f"wrk saw errors:\n{out}")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)\b", out)
    assert p99 is not None, out
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[p99.group(2)]
    return {"rps": rps, "p99_ms": float(p99.group(1)) * scale, "requests": total, "cpu_us": cpu / total * 1e6}


def check_once(url: str, body: str, token: str) -> None:
    import urllib.request

    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
    answer = json.loads(urllib.request.urlopen(urllib.request.Request(url, body.encode(), headers)).read())
    if "errors" in answer:
        raise SystemExit(f"the request fails: {answer['errors']}")


async def _count_uploads(database_url: str) -> int:
    from tortoise import Tortoise

    from app import db

    await Tortoise.init(config=db.tortoise_config(database_url))
    try:
        from app.models import Upload

        return await Upload.all().count()
    finally:
        await Tortoise.close_connections()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--callers", type=int, default=8192, help="distinct token subjects the load rotates over")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is needed: apt-get install -y wrk")

    secret = secrets.token_hex(32)
    auth = tokens(secret, args.callers)
    graphql_body = json.dumps({"query": MUTATION})
    cases = [
        ("graphql", "bench.servers:api", "/healthz", "/graphql", graphql_body, {}),
        # The same app with the rate limit's buckets in process memory instead of the database.
        ("graphql-mem", "bench.servers:api", "/healthz", "/graphql", graphql_body, {"PRESIGN_RATE_STORE": "process"}),
        ("bare", "bench.servers:bare", "/presign", "/presign", json.dumps(BARE), {}),
    ]
    runs: dict[str, list[dict[str, float]]] = {name: [] for name, *_ in cases}
    load_before = os.getloadavg()
    with moto_server() as storage, ExitStack() as stack:
        make_bucket(storage, "bench")
        servers: dict[str, tuple[str, str, str]] = {}
        for name, factory, probe, path, body, extra in cases:
            database_url = stack.enter_context(database(args.db, f"bench_{os.getpid()}_{name}"))
            env = app_env(storage, "bench", database_url)
            env.setdefault("LOG_LEVEL", "INFO")
            # Production limits: many callers each stay far below them.
            env.update({"AUTH_JWT_SECRET": secret, "PRESIGN_RATE_PER_MINUTE": "60", "MAX_PENDING_UPLOADS": "100"})
            env.update(extra)
            base, proc = stack.enter_context(uvicorn(factory, env, probe))
            check_once(base + path, body, auth[0])
            warm = wrk(base + path, body, args.connections, 2, auth, proc.pid)  # pools filled, caches warm
            servers[name] = (base + path, body, database_url, proc.pid)
            runs[name].append({**warm, "warm-up": 1})
        for _ in range(args.rounds):
            for name, (url, body, _, pid) in servers.items():
                runs[name].append(wrk(url, body, args.connections, args.duration, auth, pid))
        for name, (_, _, database_url, _) in servers.items():
            sent = 1 + sum(r["requests"] for r in runs[name])
            stored = asyncio.run(_count_uploads(database_url))
            # wrk counts the answered requests; those still in flight when a run ends may land too.
            if not sent <= stored <= sent + args.connections * (1 + args.rounds):
                raise SystemExit(f"{name}: wrk sent {sent} requests but {stored} uploads were issued")
    load_after = os.getloadavg()
    results = {name: max((r for r in rs if "warm-up" not in r), key=lambda r: r["rps"]) for name, rs in runs.items()}

    g, b = results["graphql"], results["bare"]
    print(
        f"presign, {args.db}, {args.connections} connections, {args.callers} callers, "
        f"{args.duration}s x {args.rounds} rounds (best)"
    )
    print(f"  load average (1 min) {load_before[0]:.1f} before, {load_after[0]:.1f} after")
    cpu: dict[str, float] = {}
    for name, r in results.items():
        measured = [x for x in runs[name] if "warm-up" not in x]
        every = ", ".join(f"{x['rps']:.0f}" for x in measured)
        cpu[name] = min(x["cpu_us"] for x in measured)
        print(f"  {name:8} {r['rps']:8.0f} req/s   p99 {r['p99_ms']:6.1f} ms   (every run: {every} req/s)")
        every_cpu = ", ".join(f"{x['cpu_us']:.0f}" for x in measured)
        print(f"  {'':8} server CPU per request {cpu[name]:6.0f} us (best run; every run: {every_cpu} us)")
    ratio = g["rps"] / b["rps"]
    by_cpu = cpu["bare"] / cpu["graphql"]
    print(f"  graphql / bare: throughput {ratio:.0%}, CPU per request (bare / graphql) {by_cpu:.0%}")
    m = results["graphql-mem"]
    print(
        f"  rate buckets in the database / in process memory: throughput {g['rps'] / m['rps']:.0%}, "
        f"p99 {g['p99_ms']:.1f} / {m['p99_ms']:.1f} ms, "
        f"server CPU per request {cpu['graphql'] - cpu['graphql-mem']:+.0f} us"
    )
    verdict = g["rps"] >= 2500 and g["p99_ms"] < 50 and ratio >= 0.5
    print(f"  targets (>= 2500 req/s, p99 < 50 ms, >= 50% of bare): {'met' if verdict else 'MISSED'}")


if __name__ == "__main__":
    main()
