"""One full upload cycle (presign, POST to storage, record_create with its checks and its promotion,
one query): CPU the API process spends, bytes it sends and receives, and what promotion adds to a save,
for 1 KB, 10 MB and 1 GB files.

Run: .venv/bin/python bench/cycle.py [--db sqlite|postgres] [--storage seaweedfs|moto] [--cycles 200]
                                     [--sizes 1024,10485760,1073741824]
Two APIs run side by side as uvicorn processes: the real one (bench.servers:api) and the same without
the promotion's storage steps (bench.servers:api_without_promotion: no server-side copy, no delete of
the quarantined object). Cycles alternate between them, so both see the same machine; the ratio of
their record_create times (median, as the client waits for it) is what promotion adds to a save. Each
API's CPU is read from /proc/<pid>/stat (user + system) around its cycles. Byte-counting TCP relays sit
on the API's links: client <-> API, and API <-> storage (S3_ENDPOINT_URL points at a relay; the browser's
form POST goes straight to storage, as in production). Big files are generated while they are sent,
never held in memory. SeaweedFS (default) is a real S3 server whose copy moves the bytes; moto copies
in memory.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.harness import (
    Storage,
    app_env,
    cpu_seconds,
    database,
    free_port,
    make_bucket,
    moto_server,
    seaweedfs_server,
    uvicorn,
)

TABLE = """name: files
properties:
  - name: blob
    type: upload
    options:
      acl: private
      content_disposition: attachment
      content_length: { gte: 1, lte: 2097152 }   # KiB: up to 2 GiB
"""
PRESIGN = """mutation { property_upload_presigned_url(table: "files", property_name: "blob") {
  upload_url upload_url_payload key } }"""
CREATE = """mutation($url: String) { record_create(record: {table: "files",
  properties: [{name: "blob", value: $url}]}) { id } }"""
QUERY = """query($id: ID!) { record(id: $id) { id blob: property_upload(name: "blob") { url size } } }"""


class Relay:
    """A TCP relay to `target` that counts the bytes in each direction."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self.up = 0  # towards the target
        self.down = 0  # back from the target

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, upstream: bool) -> None:
        try:
            while chunk := await reader.read(65536):
                if upstream:
                    self.up += len(chunk)
                else:
                    self.down += len(chunk)
                writer.write(chunk)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        target_reader, target_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        try:
            await asyncio.gather(self._pipe(reader, target_writer, True), self._pipe(target_reader, writer, False))
        except asyncio.CancelledError:
            pass  # keep-alive connections still open when the benchmark ends

    def total(self) -> int:
        return self.up + self.down


class Generated:
    """`size` bytes produced as they are read: a file object that never holds the file."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.pos = 0
        self.block = b"%PDF-1.4\n" + bytes(range(256)) * 256

    def read(self, n: int = -1) -> bytes:
        n = self.size - self.pos if n < 0 else min(n, self.size - self.pos)
        out = (self.block * (n // len(self.block) + 1))[:n] if n > len(self.block) else self.block[:n]
        self.pos += n
        return out

    def seek(self, offset: int, whence: int = 0) -> int:
        self.pos = {0: offset, 1: self.pos + offset, 2: self.size + offset}[whence]
        return self.pos

    def tell(self) -> int:
        return self.pos


async def gql(http: httpx.AsyncClient, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    body = (await http.post("/graphql", json={"query": query, "variables": variables or {}})).json()
    if body.get("errors"):
        raise SystemExit(f"GraphQL error: {body['errors']}")
    data: dict[str, Any] = body["data"]
    return data


@dataclass
class Api:
    """One API process under measurement, reached through its own byte-counting relay."""

    name: str
    pid: int
    relay: Relay
    relay_s3: Relay
    saves: list[float] = field(default_factory=list)  # seconds each record_create took
    cpu: float = 0.0
    bytes: float = 0.0


async def cycle(api: httpx.AsyncClient, storage: httpx.AsyncClient, size: int) -> float:
    """One cycle; returns how long record_create took (its checks, its promotion, its transaction)."""
    presigned = (await gql(api, PRESIGN))["property_upload_presigned_url"]
    fields = dict(presigned["upload_url_payload"])
    response = await storage.post(
        presigned["upload_url"], data=fields, files={"file": ("data.bin", Generated(size), "application/pdf")}
    )
    assert response.status_code == 201, response.text[:300]
    url = f"{presigned['upload_url']}/{presigned['key'].replace('${filename}', 'data.bin')}"
    started = time.perf_counter()
    record_id = (await gql(api, CREATE, {"url": url}))["record_create"]["id"]
    saved = time.perf_counter() - started
    got = (await gql(api, QUERY, {"id": record_id}))["record"]["blob"]
    assert got["size"] == size, got
    return saved


async def measure(apis: list[Api], size: int, cycles: int) -> None:
    """`cycles` cycles on each API, alternating, after one warm-up cycle each."""
    async with httpx.AsyncClient(timeout=3600) as storage:
        clients = [httpx.AsyncClient(base_url=f"http://127.0.0.1:{a.relay.port}", timeout=3600) for a in apis]
        try:
            for api, client in zip(apis, clients, strict=True):
                await cycle(client, storage, min(size, 1024))  # warm-up: connections, caches
                api.saves.clear()
                api.cpu, api.bytes = -cpu_seconds(api.pid), -(api.relay.total() + api.relay_s3.total())
            for _ in range(cycles):
                for api, client in zip(apis, clients, strict=True):
                    api.saves.append(await cycle(client, storage, size))
            for api in apis:
                api.cpu = (api.cpu + cpu_seconds(api.pid)) / cycles
                api.bytes = (api.bytes + api.relay.total() + api.relay_s3.total()) / cycles
        finally:
            for client in clients:
                await client.aclose()


@contextmanager
def served(factory: str, env: dict[str, str]) -> Iterator[tuple[str, int]]:
    with uvicorn(factory, env, "/healthz") as (base, proc):
        yield base, proc.pid


async def run(args: argparse.Namespace, storage: Storage, database_urls: list[str], schema_dir: str) -> None:
    storage_port = int(storage.url.rsplit(":", 1)[1])
    variants = [("with promotion", "bench.servers:api"), ("without", "bench.servers:api_without_promotion")]
    relays_s3 = [Relay(storage_port) for _ in variants]
    for relay in relays_s3:
        await relay.start()
    envs = []
    for relay, database_url in zip(relays_s3, database_urls, strict=True):
        env = app_env(f"http://127.0.0.1:{relay.port}", "bench", database_url, storage)
        env.update({"S3_PUBLIC_URL": storage.url, "SCHEMA_DIR": schema_dir})
        envs.append(env)
    loop = asyncio.get_running_loop()
    with served(variants[0][1], envs[0]) as (base_a, pid_a), served(variants[1][1], envs[1]) as (base_b, pid_b):
        apis = []
        for (name, _), base, pid, relay_s3 in zip(variants, (base_a, base_b), (pid_a, pid_b), relays_s3, strict=True):
            relay = Relay(int(base.rsplit(":", 1)[1]))
            await relay.start()
            apis.append(Api(name, pid, relay, relay_s3))
        print(f"upload cycle, {args.db}, {args.storage}: presign + POST to storage + record_create + one query")
        print(
            f"  {'file size':>14} {'cycles':>6} {'save, with':>11} {'without':>9} {'ratio':>6} "
            f"{'API CPU/cycle':>14} {'without':>9} {'API bytes/cycle':>16} {'proxy would carry':>18}"
        )
        for size in args.sizes:
            cycles = args.cycles if size <= 1 << 20 else max(2, args.cycles * (1 << 20) // size)
            await loop.create_task(measure(apis, size, cycles))
            with_, without = apis
            save_with, save_without = statistics.median(with_.saves), statistics.median(without.saves)
            print(
                f"  {size:>14,} {cycles:>6} {save_with * 1000:>8.1f} ms {save_without * 1000:>6.1f} ms "
                f"{save_with / save_without:>6.2f} {with_.cpu * 1000:>11.2f} ms {without.cpu * 1000:>6.2f} ms "
                f"{with_.bytes:>16,.0f} {size + with_.bytes:>18,.0f}"
            )
        for api in apis:
            api.relay.server.close()
    for relay in relays_s3:
        relay.server.close()
    print("  save: median record_create time; ratio: with / without promotion (same run, alternating cycles)")
    print("  targets: CPU < 2 ms and bytes < 8 KB per cycle whatever the size (bytes: client<->API + API<->storage)")


@contextmanager
def storage_server(kind: str) -> Iterator[Storage]:
    if kind == "seaweedfs":
        with seaweedfs_server() as server:
            yield server
    else:
        with moto_server() as url:
            yield Storage(url)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--storage", choices=["seaweedfs", "moto"], default="seaweedfs")
    parser.add_argument("--cycles", type=int, default=200)
    parser.add_argument("--sizes", default="1024,10485760,1073741824")
    args = parser.parse_args()
    args.sizes = [int(s) for s in args.sizes.split(",")]
    with (
        tempfile.TemporaryDirectory() as schema_dir,
        storage_server(args.storage) as storage,
        database(args.db, f"bench_cycle_a_{args.db}") as db_a,
        database(args.db, f"bench_cycle_b_{args.db}") as db_b,
    ):
        Path(schema_dir, "files.yml").write_text(TABLE)
        make_bucket(storage.url, "bench", storage)
        asyncio.run(run(args, storage, [db_a, db_b], schema_dir))


if __name__ == "__main__":
    main()
