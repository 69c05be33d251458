"""`records` filtered by a property value and sorted by created_at DESC over 1,000,000 records: server
time with the per-property index (app/record_indexes.py), against the same query without it.

Run: .venv/bin/python bench/records_filter.py [--db both|sqlite|postgres] [--records 1000000] [--runs 30]

For each database: a freshly migrated one gets `--records` records of a table `items` (category: one
of 1,000 strings, so a value matches about 0.1 %; price; tag), written with one bulk statement (the
benchmark is about reading, and a million record_create calls would take hours), spread over a year
of created_at, plus 10 % records of another table. The app starts in-process (its start-up builds
the per-property indexes), then runs the platformOS document below `--runs` times over ASGI for
per_page 20 and per_page 1000. Server time is what the app's own ObserveMiddleware logs per request
(ASGI call to last response byte). The baseline is the same document after dropping the index on
`category`, in the same run, so both see the same data, caches and machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.harness import app_env, database, make_bucket, moto_server

SCHEMA = """name: items
properties:
  - {name: category, type: string}
  - {name: price, type: integer}
  - {name: tag, type: string}
"""
OTHER = "name: other\nproperties:\n  - {name: category, type: string}\n"
# The shape of pos-modules' CRUD generator search (sort: created_at DESC, total_entries).
QUERY = """query search($category: String, $limit: Int = 20) {
  items: records(
    per_page: $limit
    filter: { table: { value: "items" }, properties: [{ name: "category", value: $category }] }
    sort: [{ created_at: { order: DESC } }]
  ) {
    total_entries
    has_next_page
    results { id created_at category: property(name: "category") price: property_int(name: "price") }
  }
}"""
CATEGORIES = 1000
START = datetime(2025, 1, 1, tzinfo=UTC)


class Durations(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.ms: list[float] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.ms.append(float(record.__dict__["duration_ms"]))


def rows(count: int) -> list[tuple[str, str, datetime]]:
    rng = random.Random(42)
    out = []
    for i in range(count):
        table = "other" if i % 10 == 9 else "items"
        props = {"category": f"c{rng.randrange(CATEGORIES):04d}", "price": rng.randrange(100_000), "tag": f"t{i % 7}"}
        out.append((table, json.dumps(props), START + timedelta(seconds=i * 31_536_000 // count)))
    return out


async def fill_postgres(url: str, data: list[tuple[str, str, datetime]]) -> None:
    import asyncpg

    conn = await asyncpg.connect(url.replace("postgres://", "postgresql://", 1))
    try:
        await conn.copy_records_to_table(
            "records",
            records=((t, p, c, c) for t, p, c in data),
            columns=["table", "properties", "created_at", "updated_at"],
        )
        await conn.execute("ANALYZE records")
    finally:
        await conn.close()


def fill_sqlite(url: str, data: list[tuple[str, str, datetime]]) -> None:
    conn = sqlite3.connect(url.removeprefix("sqlite://").split("?", 1)[0])
    try:
        # Timestamps as Tortoise writes them (str of a UTC datetime), so they compare as it expects.
        conn.executemany(
            'INSERT INTO records ("table", properties, created_at, updated_at) VALUES (?, ?, ?, ?)',
            ((t, p, str(c), str(c)) for t, p, c in data),
        )
        conn.commit()
        conn.execute("ANALYZE")
    finally:
        conn.close()


async def measure(http: httpx.AsyncClient, durations: Durations, per_page: int, runs: int) -> dict[str, float]:
    categories = [f"c{n:04d}" for n in random.Random(7).sample(range(CATEGORIES), runs)]
    for category in categories[:3]:  # warm-up: document caches, connection pool, planner
        await gql(http, {"category": category, "limit": per_page})
    durations.ms.clear()
    for category in categories:
        page = (await gql(http, {"category": category, "limit": per_page}))["items"]
        assert all(r["category"] == category for r in page["results"]) and page["total_entries"] > 0
        assert len(page["results"]) == min(per_page, page["total_entries"])
    ms = sorted(durations.ms)
    return {"median": statistics.median(ms), "p95": ms[int(len(ms) * 0.95) - 1], "best": ms[0]}


async def gql(http: httpx.AsyncClient, variables: dict[str, Any]) -> dict[str, Any]:
    body = (await http.post("/graphql", json={"query": QUERY, "variables": variables})).json()
    if body.get("errors"):
        raise SystemExit(f"GraphQL error: {body['errors']}")
    data: dict[str, Any] = body["data"]
    return data


async def run(env: dict[str, str], runs: int) -> dict[tuple[str, int], dict[str, float]]:
    os.environ.update(env)
    from tortoise import connections

    from app.main import create_app
    from app.record_indexes import index_name
    from app.settings import Settings

    app = create_app(Settings.from_env())
    results: dict[tuple[str, int], dict[str, float]] = {}
    access = logging.getLogger("app.access")
    access.setLevel(logging.INFO)
    durations = Durations()
    started = time.monotonic()
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench", timeout=600) as http,
    ):
        print(f"  start-up (builds the property indexes): {time.monotonic() - started:.1f} s", flush=True)
        access.addHandler(durations)
        try:
            for per_page in (20, 1000):
                results[("index", per_page)] = await measure(http, durations, per_page, runs)
            await connections.get("default").execute_script(f'DROP INDEX IF EXISTS "{index_name("items", "category")}"')
            for per_page in (20, 1000):
                results[("no index", per_page)] = await measure(http, durations, per_page, runs)
        finally:
            access.removeHandler(durations)
    return results


def bench(kind: str, count: int, runs: int) -> dict[tuple[str, int], dict[str, float]]:
    data = rows(count)
    with moto_server() as storage, database(kind) as url, tempfile.TemporaryDirectory() as schema:
        Path(schema, "items.yml").write_text(SCHEMA)
        Path(schema, "other.yml").write_text(OTHER)
        make_bucket(storage, "bench")
        started = time.monotonic()
        if kind == "postgres":
            asyncio.run(fill_postgres(url, data))
        else:
            fill_sqlite(url, data)
        print(f"{kind}: {count:,} records written in {time.monotonic() - started:.1f} s", flush=True)
        env = {**app_env(storage, "bench", url), "SCHEMA_DIR": schema, "RUN_WORKER": "false"}
        return asyncio.run(run(env, runs))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", choices=["both", "sqlite", "postgres"], default="both")
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    kinds = ["postgres", "sqlite"] if args.db == "both" else [args.db]
    table = {kind: bench(kind, args.records, args.runs) for kind in kinds}
    print(f"\nrecords(filter: properties value, sort: created_at DESC), {args.records:,} records, {args.runs} runs")
    print("server time per query, ms: median / p95 / best")
    for kind, results in table.items():
        for per_page in (20, 1000):
            indexed, baseline = results[("index", per_page)], results[("no index", per_page)]
            print(
                f"  {kind:8} per_page {per_page:4}: index {indexed['median']:7.2f} / {indexed['p95']:7.2f} / "
                f"{indexed['best']:7.2f}   without {baseline['median']:8.2f} / {baseline['p95']:8.2f} / "
                f"{baseline['best']:8.2f}   x{baseline['median'] / indexed['median']:.0f}"
            )
    if "postgres" in table:
        median = table["postgres"][("index", 20)]["median"]
        print(f"target: PostgreSQL per_page 20 under 20 ms (median): {'met' if median < 20 else 'MISSED'}")


if __name__ == "__main__":
    main()
