"""What a table's `access.read: owner` rule costs a `records` page over 1,000,000 records, against the
same restriction written by the client as a filter on a table without the rule, in the same run.

Run: .venv/bin/python bench/records_access.py [--db both|sqlite|postgres] [--records 1000000] [--runs 30]

For each database: a freshly migrated one gets `--records` records, 90 % of a table `files` owned by
one user per 100 records (about 90 files each), 10 % of a table `shared`, spread over a year of created_at, written
with one bulk statement. The app starts in-process with JWT auth on, and each query runs `--runs`
times over ASGI as a random user (per_page 20, total_entries asked for):

- own: `records(filter: {table: files})` with `files` declared `read: owner`; its baseline is the
  same table declared `read: public` and the filter `{table: files, user_id: <the caller>}`;
- all: `records` without filter (`shared` plus the caller's own `files`); its baseline is the public
  declaration with `{or: [{table: shared}, {table: files, user_id: <the caller>}]}`.

Server time is what the app's own ObserveMiddleware logs per request (ASGI call to last response byte).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import jwt

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.harness import app_env, database, make_bucket, moto_server
from bench.records_filter import Durations

SECRET = "bench-secret-" + "0123456789abcdef" * 3
# About 90 files per user, whatever --records says.
RECORDS_PER_USER = 100
SHARED = "name: shared\naccess: {read: public}\nproperties:\n  - {name: title, type: string}\n"
FILES = "name: files\naccess: {{read: {read}}}\nproperties:\n  - {{name: title, type: string}}\n"
QUERY = """query($filter: RecordsFilterInput) {
  records(per_page: 20, filter: $filter, sort: [{created_at: {order: DESC}}]) {
    total_entries results { id table user_id } } }"""
START = datetime(2025, 1, 1, tzinfo=UTC)


def user(n: int) -> str:
    return f"u{n:05d}"


def users_of(count: int) -> int:
    return max(1, count // RECORDS_PER_USER)


def rows(count: int) -> Iterator[tuple[str, str, str, datetime]]:
    rng = random.Random(42)
    users = users_of(count)
    for i in range(count):
        table = "shared" if i % 10 == 9 else "files"
        yield (
            table,
            json.dumps({"title": f"t{i}"}),
            user(rng.randrange(users)),
            START + timedelta(seconds=i * 31_536_000 // count),
        )


async def fill_postgres(url: str, count: int) -> None:
    import asyncpg

    conn = await asyncpg.connect(url.replace("postgres://", "postgresql://", 1))
    try:
        await conn.copy_records_to_table(
            "records",
            records=((t, p, o, c, c) for t, p, o, c in rows(count)),
            columns=["table", "properties", "owner", "created_at", "updated_at"],
        )
        await conn.execute("ANALYZE records")
    finally:
        await conn.close()


def fill_sqlite(url: str, count: int) -> None:
    conn = sqlite3.connect(url.removeprefix("sqlite://").split("?", 1)[0])
    try:
        # Timestamps as Tortoise writes them (str of a UTC datetime), so they compare as it expects.
        conn.executemany(
            'INSERT INTO records ("table", properties, owner, created_at, updated_at) VALUES (?, ?, ?, ?, ?)',
            ((t, p, o, str(c), str(c)) for t, p, o, c in rows(count)),
        )
        conn.commit()
        conn.execute("ANALYZE")
    finally:
        conn.close()


def filter_for(kind: str, rule: bool, me: str) -> dict[str, Any] | None:
    if kind == "own":
        return {"table": {"value": "files"}} if rule else {"table": {"value": "files"}, "user_id": {"value": me}}
    if rule:
        return None
    return {"or": [{"table": {"value": "shared"}}, {"table": {"value": "files"}, "user_id": {"value": me}}]}


async def measure(
    http: httpx.AsyncClient, durations: Durations, kind: str, rule: bool, runs: int, count: int
) -> dict[str, float]:
    users = [user(n) for n in random.Random(7).sample(range(users_of(count)), runs + 3)]
    durations.ms.clear()
    for index, me in enumerate(users):
        if index == 3:  # the first three warm caches, the connection pool and the planner
            durations.ms.clear()
        token = jwt.encode({"sub": me, "exp": int(time.time()) + 3600}, SECRET, algorithm="HS256")
        body = (
            await http.post(
                "/graphql",
                json={"query": QUERY, "variables": {"filter": filter_for(kind, rule, me)}},
                headers={"Authorization": f"Bearer {token}"},
            )
        ).json()
        if body.get("errors"):
            raise SystemExit(f"GraphQL error: {body['errors']}")
        page = body["data"]["records"]
        # Only what the caller may read, either way.
        assert page["total_entries"] > 0 and page["results"], page
        assert all(r["user_id"] == me or (kind == "all" and r["table"] == "shared") for r in page["results"]), page
    ms = sorted(durations.ms)
    return {"median": statistics.median(ms), "p95": ms[int(len(ms) * 0.95) - 1]}


async def run(env: dict[str, str], schema: Path, rule: bool, runs: int, count: int) -> dict[str, dict[str, float]]:
    from app.main import create_app
    from app.settings import Settings

    (schema / "files.yml").write_text(FILES.format(read="owner" if rule else "public"))
    app = create_app(Settings.from_env({**env, "SCHEMA_DIR": str(schema)}))
    access_log = logging.getLogger("app.access")
    access_log.setLevel(logging.INFO)
    durations = Durations()
    results: dict[str, dict[str, float]] = {}
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench", timeout=600) as http,
    ):
        access_log.addHandler(durations)
        try:
            for kind in ("own", "all"):
                results[kind] = await measure(http, durations, kind, rule, runs, count)
        finally:
            access_log.removeHandler(durations)
    return results


def bench(kind: str, count: int, runs: int) -> dict[tuple[str, bool], dict[str, float]]:
    with moto_server() as storage, database(kind) as url, tempfile.TemporaryDirectory() as folder:
        schema = Path(folder)
        (schema / "shared.yml").write_text(SHARED)
        make_bucket(storage, "bench")
        started = time.monotonic()
        if kind == "postgres":
            asyncio.run(fill_postgres(url, count))
        else:
            fill_sqlite(url, count)
        print(f"{kind}: {count:,} records written in {time.monotonic() - started:.1f} s", flush=True)
        env = {**app_env(storage, "bench", url), "RUN_WORKER": "false", "AUTH_JWT_SECRET": SECRET}
        results: dict[tuple[str, bool], dict[str, float]] = {}
        for rule in (False, True):
            for name, value in asyncio.run(run(env, schema, rule, runs, count)).items():
                results[(name, rule)] = value
        return results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", choices=["both", "sqlite", "postgres"], default="both")
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    kinds = ["postgres", "sqlite"] if args.db == "both" else [args.db]
    table = {kind: bench(kind, args.records, args.runs) for kind in kinds}
    print(f"\nrecords(per_page: 20) with total_entries, {args.records:,} records, {args.runs} runs, JWT auth on")
    print("server time per query, ms: median / p95; rule = access.read: owner, filter = the same by user_id")
    for kind, results in table.items():
        for name in ("own", "all"):
            rule, baseline = results[(name, True)], results[(name, False)]
            print(
                f"  {kind:8} {name:3}: rule {rule['median']:7.2f} / {rule['p95']:7.2f}   filter "
                f"{baseline['median']:7.2f} / {baseline['p95']:7.2f}   x{rule['median'] / baseline['median']:.2f}"
            )


if __name__ == "__main__":
    main()
