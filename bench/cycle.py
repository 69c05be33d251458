"""One full upload cycle (presign, POST to storage, record_create with its checks, one query):
CPU the API process spends, and bytes it sends and receives, for 1 KB, 10 MB and 1 GB files.

Run: .venv/bin/python bench/cycle.py [--db sqlite|postgres] [--cycles 200] [--sizes 1024,10485760,1073741824]
The API runs as its own uvicorn process (bench.servers:api); its CPU is read from /proc/<pid>/stat
(user + system) around the cycles. Two byte-counting TCP relays sit on the API's links: client <-> API,
and API <-> storage (S3_ENDPOINT_URL points at the relay, S3_PUBLIC_URL at the moto server itself, so
the browser's upload goes straight to storage as in production). Big files are generated while they
are sent, never held in memory; moto spools objects over 16 MiB to temporary files, so 1 GB fits.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.harness import app_env, cpu_seconds, database, free_port, make_bucket, moto_server, uvicorn

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


async def cycle(api: httpx.AsyncClient, storage: httpx.AsyncClient, size: int) -> None:
    presigned = (await gql(api, PRESIGN))["property_upload_presigned_url"]
    fields = dict(presigned["upload_url_payload"])
    response = await storage.post(
        presigned["upload_url"], data=fields, files={"file": ("data.bin", Generated(size), "application/pdf")}
    )
    assert response.status_code == 201, response.text[:300]
    url = f"{presigned['upload_url']}/{presigned['key'].replace('${filename}', 'data.bin')}"
    record_id = (await gql(api, CREATE, {"url": url}))["record_create"]["id"]
    got = (await gql(api, QUERY, {"id": record_id}))["record"]["blob"]
    assert got["size"] == size, got


async def measure(api_port: int, moto_port: int, relay_s3: Relay, pid: int, size: int, cycles: int) -> dict[str, float]:
    relay_api = Relay(api_port)
    await relay_api.start()
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{relay_api.port}", timeout=600) as api, \
            httpx.AsyncClient(timeout=3600) as storage:  # fmt: skip
        await cycle(api, storage, min(size, 1024))  # warm-up: connections, caches
        before_api, before_s3 = relay_api.total(), relay_s3.total()
        cpu = cpu_seconds(pid)
        for _ in range(cycles):
            await cycle(api, storage, size)
        cpu = cpu_seconds(pid) - cpu
    relay_api.server.close()
    return {
        "cpu_ms": cpu / cycles * 1000,
        "client_bytes": (relay_api.total() - before_api) / cycles,
        "storage_bytes": (relay_s3.total() - before_s3) / cycles,
    }


async def run(args: argparse.Namespace, storage_url: str, database_url: str, schema_dir: str) -> None:
    moto_port = int(storage_url.rsplit(":", 1)[1])
    relay_s3 = Relay(moto_port)
    await relay_s3.start()
    env = app_env(f"http://127.0.0.1:{relay_s3.port}", "bench", database_url)
    env.update({"S3_PUBLIC_URL": storage_url, "SCHEMA_DIR": schema_dir})
    loop = asyncio.get_running_loop()
    with uvicorn("bench.servers:api", env, "/healthz") as (base, proc):
        api_port = int(base.rsplit(":", 1)[1])
        print(f"upload cycle, {args.db}: presign + POST to storage + record_create + one query")
        print(
            f"  {'file size':>14} {'cycles':>6} {'API CPU/cycle':>14} {'API bytes/cycle':>16} {'proxy would carry':>18}"
        )
        for size in args.sizes:
            cycles = args.cycles if size <= 1 << 20 else max(1, args.cycles * (1 << 20) // size)
            r = await loop.create_task(measure(api_port, moto_port, relay_s3, proc.pid, size, cycles))
            api_bytes = r["client_bytes"] + r["storage_bytes"]
            print(f"  {size:>14,} {cycles:>6} {r['cpu_ms']:>11.2f} ms {api_bytes:>16,.0f} {size + api_bytes:>18,.0f}")
    relay_s3.server.close()
    print("  targets: CPU < 2 ms and bytes < 8 KB per cycle whatever the size (bytes: client<->API + API<->storage)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--cycles", type=int, default=200)
    parser.add_argument("--sizes", default="1024,10485760,1073741824")
    args = parser.parse_args()
    args.sizes = [int(s) for s in args.sizes.split(",")]
    with tempfile.TemporaryDirectory() as schema_dir, moto_server() as storage, database(args.db) as database_url:
        Path(schema_dir, "files.yml").write_text(TABLE)
        make_bucket(storage, "bench")
        asyncio.run(run(args, storage, database_url, schema_dir))


if __name__ == "__main__":
    main()
