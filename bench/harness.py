"""Shared by the benchmarks: a moto server, a migrated database and uvicorn processes, all real and
on free loopback ports, torn down afterwards."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import boto3
from botocore.config import Config

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app import db  # noqa: E402
from app.settings import KEEP_ALIVE_SECONDS  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")
PG_ADMIN = os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres")


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) a process has used so far, from /proc: unlike throughput, it does
    not drop when other processes on a shared machine take the cores."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{proc.args!r} exited with {proc.returncode}")
        try:
            urllib.request.urlopen(url, timeout=1).close()
            return
        except urllib.error.HTTPError:
            return  # it answers
        except (urllib.error.URLError, OSError):
            time.sleep(0.1)
    raise SystemExit(f"{url} did not answer within {timeout}s")


def stop(proc: subprocess.Popen[bytes], grace: float = 10) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()


@contextmanager
def moto_server() -> Iterator[str]:
    with moto_process() as (url, _):
        yield url


@contextmanager
def moto_process() -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A moto server (S3 and SQS over HTTP) on a free port: its URL and its process."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(url + "/moto-api/", proc)
        yield url, proc
    finally:
        stop(proc)


@dataclass(frozen=True)
class Storage:
    """An S3 server the benchmarks run against, and how to reach it."""

    url: str
    access_key_id: str = "testing"
    secret_access_key: str = "testing"
    public_read: str = "acl"
    conditional_copy: str = "head"  # moto ignores x-amz-copy-source-if-match


@contextmanager
def seaweedfs_server() -> Iterator[Storage]:
    """SeaweedFS (`weed mini`, as `make run` starts it but without its front) on a free port, its data
    in a temporary folder."""
    from app.embedded import seaweedfs

    with tempfile.TemporaryDirectory() as tmp:
        server = seaweedfs.start(Path(tmp), port=free_port(), front=False)
        try:
            creds = server.credentials
            yield Storage(server.url, creds.access_key_id, creds.secret_access_key, "policy", "storage")
        finally:
            server.stop()


def make_bucket(endpoint: str, bucket: str, storage: Storage | None = None) -> None:
    s3 = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=storage.access_key_id if storage else "testing",
        aws_secret_access_key=storage.secret_access_key if storage else "testing",
        config=Config(signature_version="s3v4"),
    )
    s3.create_bucket(Bucket=bucket)


async def pg_admin(sql: str) -> None:
    """Run one statement as the PostgreSQL admin (CREATE/DROP DATABASE of the benchmarks)."""
    import asyncpg

    conn = await asyncpg.connect(PG_ADMIN.replace("postgres://", "postgresql://", 1))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@contextmanager
def database(kind: str, name: str | None = None) -> Iterator[str]:
    """A freshly migrated database: a temporary SQLite file, or a PostgreSQL database of our own
    (`name`, default bench_<pid>), dropped afterwards."""
    if kind == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite://{tmp}/bench.sqlite3"
            asyncio.run(db.migrate(url))
            yield url
        return
    name = name or f"bench_{os.getpid()}"
    asyncio.run(pg_admin(f'DROP DATABASE IF EXISTS "{name}"'))
    asyncio.run(pg_admin(f'CREATE DATABASE "{name}"'))
    try:
        url = PG_ADMIN.rsplit("/", 1)[0] + "/" + name
        asyncio.run(db.migrate(url))
        yield url
    finally:
        asyncio.run(pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def app_env(storage: str, bucket: str, database_url: str, server: Storage | None = None) -> dict[str, str]:
    """The API's environment; `storage` is the endpoint it talks to (a relay, or `server` itself)."""
    server = server or Storage(storage)
    return {
        **os.environ,
        "DATABASE_URL": database_url,
        "S3_ENDPOINT_URL": storage,
        "S3_BUCKET": bucket,
        "S3_REGION": "us-east-1",
        "S3_PUBLIC_READ": server.public_read,
        "S3_CONDITIONAL_COPY": server.conditional_copy,
        "AWS_ACCESS_KEY_ID": server.access_key_id,
        "AWS_SECRET_ACCESS_KEY": server.secret_access_key,
        "PYTHONPATH": str(ROOT),
        # The load comes from one address: the per-caller abuse limits would throttle it (by design).
        "PRESIGN_RATE_PER_MINUTE": "100000",
        "MAX_PENDING_UPLOADS": "1000000",
    }


@contextmanager
def uvicorn(
    factory: str, env: dict[str, str], probe: str, log: Path | None = None
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """One uvicorn worker process with uvloop and httptools, as app/run.py serves the API; its
    stderr goes to `log` when given (else nowhere)."""
    port = free_port()
    with (
        open(log or os.devnull, "ab") as stderr,
        _started(
            [
                sys.executable,
                "-m",
                "uvicorn",
                factory,
                "--factory",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--loop",
                "uvloop",
                "--http",
                "httptools",
                "--timeout-keep-alive",
                str(KEEP_ALIVE_SECONDS),
                # WebSockets as app/run.py serves them: no compression, the protocol's own keep-alive.
                "--ws-per-message-deflate",
                "false",
                "--ws-ping-interval",
                "0",
                "--no-access-log",
                "--log-level",
                "warning",
            ],
            env,
            stderr,
        ) as proc,
    ):
        base = f"http://127.0.0.1:{port}"
        wait_http(base + probe, proc)
        yield base, proc


@contextmanager
def version_worker(env: dict[str, str], log: Path | None = None) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """One standalone version worker (`python -m app.worker`), with its /metrics endpoint on a free
    port; yields that endpoint's base URL once /healthz answers. Stopped with SIGTERM (graceful)."""
    port = free_port()
    env = {**env, "WORKER_METRICS_PORT": str(port), "WORKER_METRICS_HOST": "127.0.0.1"}
    args = [sys.executable, "-m", "app.worker"]
    # The worker's grace period for a job in hand is 20 s (app/worker.py).
    with open(log or os.devnull, "ab") as stderr, _started(args, env, stderr, grace=30) as proc:
        base = f"http://127.0.0.1:{port}"
        wait_http(base + "/healthz", proc)
        yield base, proc


@contextmanager
def _started(
    args: list[str], env: dict[str, str], stderr: IO[bytes], grace: float = 10
) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=stderr)
    try:
        yield proc
    finally:
        stop(proc, grace)
