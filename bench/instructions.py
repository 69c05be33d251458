"""Instructions the API process executes per presign, per `records` page or per upload cycle, counted
by callgrind: unlike time, the count does not move when other processes share the machine.

Run: .venv/bin/python bench/instructions.py presign|records|cycle [--units N] [--auth] [--db sqlite|postgres]
     [--app DIR]
Needs valgrind (Debian: apt-get install -y valgrind). Starts a moto server, a fresh database and the API
(`bench.servers:api` of the checkout in --app, default this one: pass an older checkout to compare) as
one uvicorn process under `valgrind --tool=callgrind`, warms it up, zeroes the counters
(callgrind_control -z), runs N units one after the other, dumps the counters (callgrind_control -d) and
prints instructions per unit. The count covers the whole process: uvicorn, the app, and the SQLite
thread. Under valgrind the process runs about 50 times slower, so keep N small.

- presign: the image_presign_url mutation of bench/presign.py (one caller; with --auth, one bearer token).
- records: the `records` query of bench/records.py over 100 private uploads created first.
- cycle: bench/cycle.py's cycle with a 1 KB file (presign, POST to moto, record_create, one query).
"""

from __future__ import annotations

import argparse
import asyncio
import glob
import os
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import jwt

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import cycle as cycles
from bench.harness import PG_ADMIN, app_env, free_port, make_bucket, moto_server, pg_admin, wait_http
from bench.presign import MUTATION
from bench.records import CREATE, PDF, PRESIGN, RECORDS, gql


@contextmanager
def database(kind: str, app: Path) -> Iterator[str]:
    """A fresh database migrated by the checkout under test's own migrations."""
    with tempfile.TemporaryDirectory() as tmp:
        name = f"bench_instructions_{os.getpid()}"
        url = f"sqlite://{tmp}/bench.sqlite3" if kind == "sqlite" else PG_ADMIN.rsplit("/", 1)[0] + "/" + name
        if kind == "postgres":
            asyncio.run(pg_admin(f'DROP DATABASE IF EXISTS "{name}"'))
            asyncio.run(pg_admin(f'CREATE DATABASE "{name}"'))
        try:
            migrate = f"import asyncio; from app import db; asyncio.run(db.migrate({url!r}))"
            env = {**os.environ, "PYTHONPATH": str(app)}
            subprocess.run([sys.executable, "-c", migrate], cwd=app, env=env, check=True, capture_output=True)
            yield url
        finally:
            if kind == "postgres":
                asyncio.run(pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def instructions(dump: str) -> int:
    for line in Path(dump).read_text().splitlines():
        if line.startswith(("summary:", "totals:")):
            return int(line.split()[1])
    raise SystemExit(f"no totals in {dump}")


async def workload(kind: str, api: httpx.AsyncClient, storage: httpx.AsyncClient) -> Callable[[], Awaitable[None]]:
    if kind == "presign":

        async def presign() -> None:
            answer = (await api.post("/graphql", json={"query": MUTATION})).json()
            assert "errors" not in answer, answer

        return presign
    if kind == "records":
        for _ in range(100):
            presigned = (await gql(api, PRESIGN))["attachment_presign_url"]
            form, files = dict(presigned["upload_url_payload"]), {"file": ("cv.pdf", PDF, "application/pdf")}
            posted = await storage.post(presigned["upload_url"], data=form, files=files)
            assert posted.status_code == 201, posted.text
            await gql(api, CREATE, {"url": presigned["url"]})

        async def records() -> None:
            answer = (await api.post("/graphql", json={"query": RECORDS})).json()
            assert answer["data"]["records"]["total_entries"] == 100, answer

        return records

    async def cycle() -> None:
        await cycles.cycle(api, storage, 1024)

    return cycle


async def control(option: str, pid: int) -> None:
    await asyncio.to_thread(subprocess.run, ["callgrind_control", option, str(pid)], check=True, capture_output=True)


async def measure(args: argparse.Namespace, storage_url: str, database_url: str, schema_dir: str) -> float:
    env = app_env(storage_url, "bench", database_url)
    # One caller does all the presigns: lift its abuse limits.
    env.update({"LOG_LEVEL": "INFO", "PRESIGN_RATE_PER_MINUTE": "100000", "MAX_PENDING_UPLOADS": "1000000"})
    env["PYTHONPATH"] = str(args.app)
    if args.kind == "cycle":
        env["SCHEMA_DIR"] = schema_dir
    headers = {}
    if not args.auth:
        # Anonymous mode has no owners: only ANONYMOUS_READS=all reads documents (`read: owner`) back.
        env["ANONYMOUS_READS"] = "all"
    if args.auth:
        env["AUTH_JWT_SECRET"] = secret = secrets.token_hex(32)
        claims = {"sub": "bench", "exp": int(time.time()) + 86400}
        headers["Authorization"] = f"Bearer {jwt.encode(claims, secret, algorithm='HS256')}"
    out = tempfile.mkdtemp(prefix="callgrind-")
    port = free_port()
    command = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}/callgrind.%p", sys.executable, "-m"]
    command += ["uvicorn", "bench.servers:api", "--factory", "--port", str(port), "--loop", "uvloop"]
    command += ["--http", "httptools", "--no-access-log", "--log-level", "warning"]
    proc = await asyncio.to_thread(
        subprocess.Popen, command, cwd=args.app, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        base = f"http://127.0.0.1:{port}"
        await asyncio.to_thread(wait_http, base + "/healthz", proc, 900)
        async with (
            httpx.AsyncClient(base_url=base, timeout=900, headers=headers) as api,
            httpx.AsyncClient(timeout=900) as storage,
        ):
            unit = await workload(args.kind, api, storage)
            for _ in range(5):  # warm-up: caches, pools, lazy imports
                await unit()
            await control("-z", proc.pid)  # zero the counters
            for _ in range(args.units):
                await unit()
            await control("-d", proc.pid)  # dump them
    finally:
        proc.terminate()
        proc.wait(300)
    dumps = sorted(glob.glob(f"{out}/callgrind.{proc.pid}.*"), key=lambda p: int(p.rsplit(".", 1)[1]))
    return instructions(dumps[0]) / args.units


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("kind", choices=["presign", "records", "cycle"])
    parser.add_argument("--units", type=int, default=0, help="default: 100 presigns, 10 pages, 30 cycles")
    parser.add_argument("--auth", action="store_true", help="auth on, every request with one bearer token")
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--app", type=Path, default=Path(__file__).resolve().parents[1], help="checkout to run")
    args = parser.parse_args()
    args.units = args.units or {"presign": 100, "records": 10, "cycle": 30}[args.kind]
    args.app = args.app.resolve()
    with tempfile.TemporaryDirectory() as schema_dir, moto_server() as storage, database(args.db, args.app) as db_url:
        make_bucket(storage, "bench")
        Path(schema_dir, "files.yml").write_text(cycles.TABLE)
        per_unit = asyncio.run(measure(args, storage, db_url, schema_dir))
    where = f"{args.kind}, {args.db}{', auth' if args.auth else ''}, {args.app}"
    print(f"{where}: {per_unit / 1e6:.2f} million instructions per {args.kind} ({args.units} measured)")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
