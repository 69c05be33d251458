"""Real parts for the tests: storage servers over HTTP (moto, SeaweedFS, any S3 endpoint named by
TEST_S3_ENDPOINT_URL, and Azurite for Azure Blob Storage), SQLite and PostgreSQL migrated with aerich,
and the app served through its ASGI interface with its lifespan running.

Storage: the session fixtures `moto`, `seaweedfs_server` and `azurite_server` each start one server for
the whole session. `harness_factory` / `h` build the app on the `storage_server` fixture, moto unless a
test (or module) is marked `@pytest.mark.backends("moto", "seaweedfs")`: then it runs once per backend,
like Strawberry runs one HTTP suite against every integration ("external" adds TEST_S3_ENDPOINT_URL when
set; "azurite" runs the app with STORAGE_BACKEND=azure)."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aioboto3
import httpx
import pytest
from botocore.config import Config

from app import db
from app.embedded import azurite, seaweedfs
from app.main import create_app
from app.settings import ROOT, Settings
from app.storage.azure import AzureConfig

PG_ADMIN_DSN = os.environ.get("TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/test")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_http(url: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1.0)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up within {timeout}s")


class MotoServer:
    """moto in server mode in its own process, so tests talk HTTP to it like to real S3/SQS. It enforces
    no POST policy, signature, expiry or checksum: the save-time checks are the defence there."""

    name = "moto"
    access_key_id = "testing"
    secret_access_key = "testing"
    region = "us-east-1"
    public_read = "acl"
    conditional_copy = "head"  # moto ignores x-amz-copy-source-if-match
    enforces_policy = False

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_http(self.url + "/moto-api/")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None


@pytest.fixture(scope="session")
def moto() -> Iterator[MotoServer]:
    server = MotoServer()
    server.start()
    yield server
    server.stop()


class SeaweedServer:
    """SeaweedFS (`weed mini`, as `make run` starts it, without the front) with its data in a folder of
    its own: a real S3 server that enforces POST policies, signatures, expiry and checksums. Public
    files are readable through the bucket policy (S3_PUBLIC_READ=policy)."""

    name = "seaweedfs"
    region = "us-east-1"
    public_read = "policy"
    conditional_copy = "storage"
    enforces_policy = True

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.running: Any = None
        creds = seaweedfs.credentials(folder)
        self.access_key_id, self.secret_access_key = creds.access_key_id, creds.secret_access_key

    def start(self) -> None:
        # 64 MiB volumes: every test's bucket is a collection with volumes of its own.
        self.running = seaweedfs.start(self.folder, port=self.port, front=False, volume_size_mb=64)

    def stop(self) -> None:
        if self.running is not None:
            self.running.stop()
            self.running = None


@pytest.fixture(scope="session")
def seaweedfs_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedServer]:
    server = SeaweedServer(tmp_path_factory.mktemp("seaweedfs"))
    server.start()
    yield server
    server.stop()


class ExternalServer:
    """An S3 endpoint the environment names (TEST_S3_ENDPOINT_URL, TEST_S3_ACCESS_KEY_ID,
    TEST_S3_SECRET_ACCESS_KEY, TEST_S3_REGION, TEST_S3_PUBLIC_READ=acl|policy,
    TEST_S3_CONDITIONAL_COPY=storage|head, TEST_S3_ENFORCES_POLICY=true|false)."""

    name = "external"

    def __init__(self) -> None:
        self.url = os.environ["TEST_S3_ENDPOINT_URL"].rstrip("/")
        self.access_key_id = os.environ.get("TEST_S3_ACCESS_KEY_ID", "")
        self.secret_access_key = os.environ.get("TEST_S3_SECRET_ACCESS_KEY", "")
        self.region = os.environ.get("TEST_S3_REGION", "us-east-1")
        self.public_read = os.environ.get("TEST_S3_PUBLIC_READ", "acl")
        self.conditional_copy = os.environ.get("TEST_S3_CONDITIONAL_COPY", "storage")
        self.enforces_policy = os.environ.get("TEST_S3_ENFORCES_POLICY", "true").lower() == "true"


class AzuriteServer:
    """Azurite's blob service (the npm package pinned in tools/azurite, as `make run` starts it) with its
    data in a folder of its own: it checks SAS signatures, expiry, permissions and scope, honours CORS
    and container access levels, and, like Azure, limits neither size nor type."""

    name = "azurite"
    account = azurite.ACCOUNT
    key = azurite.KEY

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.endpoint = azurite.blob_endpoint("127.0.0.1", self.port)
        self.url = f"http://127.0.0.1:{self.port}"
        self.running: Any = None

    def start(self) -> None:
        self.running = azurite.start("127.0.0.1", self.port, self.folder, setting="a free port")

    def stop(self) -> None:
        if self.running is not None:
            self.running.stop()
            self.running = None

    def config(self, **changes: Any) -> AzureConfig:
        """A private and a public container of their own (created by `ensure_bucket`)."""
        name = f"t{uuid.uuid4().hex[:20]}"
        values: dict[str, Any] = {
            "account": self.account,
            "key": self.key,
            "container": name,
            "public_container": name + "-public",
            "endpoint": self.endpoint,
            **changes,
        }
        return AzureConfig(**values)


@pytest.fixture(scope="session")
def azurite_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AzuriteServer]:
    server = AzuriteServer(tmp_path_factory.mktemp("azurite"))
    server.start()
    yield server
    server.stop()


StorageServer = MotoServer | SeaweedServer | ExternalServer | AzuriteServer
BACKENDS = ("moto", "seaweedfs", "azurite", *(("external",) if os.environ.get("TEST_S3_ENDPOINT_URL") else ()))


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "backends(*names): run the test on each named storage backend")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "storage_server" not in metafunc.fixturenames:
        return
    marker = metafunc.definition.get_closest_marker("backends")
    names = [n for n in (marker.args if marker else ("moto",)) if n in BACKENDS]
    metafunc.parametrize("storage_server", names, indirect=True)


@pytest.fixture
def storage_server(request: pytest.FixtureRequest) -> StorageServer:
    """The storage backend of this test run (see the module docstring)."""
    if request.param == "moto":
        server: StorageServer = request.getfixturevalue("moto")
    elif request.param == "seaweedfs":
        server = request.getfixturevalue("seaweedfs_server")
    elif request.param == "azurite":
        server = request.getfixturevalue("azurite_server")
    else:
        server = ExternalServer()
    return server


def _postgres_available() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=1):
            return True
    except OSError:
        return False


def _pg_url(name: str) -> str:
    return PG_ADMIN_DSN.rsplit("/", 1)[0] + "/" + name


async def _pg_admin(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_ADMIN_DSN.replace("postgres://", "postgresql://", 1))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One SQLite file migrated by aerich; each test gets a copy."""
    path = tmp_path_factory.mktemp("db") / "template.sqlite3"
    asyncio.run(db.migrate(f"sqlite://{path}"))
    return path


@pytest.fixture(scope="session")
def postgres_db() -> Iterator[str | None]:
    """A database of our own on the local PostgreSQL, migrated by aerich; None if unreachable."""
    if not _postgres_available():
        if os.environ.get("CI"):
            raise RuntimeError("PostgreSQL is not reachable at 127.0.0.1:5432 but CI must test it")
        yield None
        return
    name = f"uploads_test_{os.getpid()}"
    asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}"'))
    asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))
    url = _pg_url(name)
    asyncio.run(db.migrate(url))
    yield url
    asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


# One backend per test process: Tortoise caches compiled queries per model, so SQLite and PostgreSQL
# cannot alternate within a process. `make test` runs the suite on SQLite, then the database tests
# again with TEST_DATABASE=postgres.
BACKEND = os.environ.get("TEST_DATABASE", "sqlite")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if "database_url" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.db)


@pytest.fixture
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if BACKEND == "sqlite":
        path = tmp_path / "test.sqlite3"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite://{path}"
    if BACKEND != "postgres":
        raise RuntimeError(f"TEST_DATABASE={BACKEND!r} must be sqlite or postgres")
    url = request.getfixturevalue("postgres_db")
    if url is None:
        pytest.skip("PostgreSQL is not reachable at 127.0.0.1:5432")
    tables = '"upload_versions", "uploads", "records", "rate_buckets"'
    asyncio.run(_run_sql(url, f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    return str(url)


async def _run_sql(url: str, sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(url.replace("postgres://", "postgresql://", 1))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


_UNSCANNED: Path | None = None


def unscanned_schema() -> Path:
    """The shipped tables (app/schema) with the virus scan switched off: the tests' default, so that a
    saved résumé is served at once, without a worker and clamd. The scanning tests
    (tests/test_scanning_flow.py) use app/schema itself."""
    global _UNSCANNED
    if _UNSCANNED is None:
        import atexit
        import tempfile

        import yaml

        folder = Path(tempfile.mkdtemp(prefix="schema-unscanned-"))
        atexit.register(shutil.rmtree, folder, True)
        for path in sorted((ROOT / "app" / "schema").glob("*.yml")):
            table = yaml.safe_load(path.read_text(encoding="utf-8"))
            for prop in table.get("properties") or []:
                (prop.get("options") or {}).pop("scan", None)
            (folder / path.name).write_text(yaml.safe_dump(table, allow_unicode=True), encoding="utf-8")
        _UNSCANNED = folder
    return _UNSCANNED


def make_settings(server: StorageServer, database_url: str, **overrides: Any) -> Settings:
    if server.name == "azurite":
        config = server.config()
        env = {
            "DATABASE_URL": database_url,
            "STORAGE_BACKEND": "azure",
            "AZURE_STORAGE_ACCOUNT": config.account,
            "AZURE_STORAGE_KEY": config.key.value,
            "AZURE_BLOB_ENDPOINT": config.blob_endpoint,
            "AZURE_CONTAINER": config.container,
            "AZURE_PUBLIC_CONTAINER": str(config.public_container),
            "SCHEMA_DIR": str(unscanned_schema()),
            # The version queue stays SQS (moto's, in the tests), whatever the storage.
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
        }
        env.update({k: str(v) for k, v in overrides.items()})
        return Settings.from_env(env)
    env = {
        "DATABASE_URL": database_url,
        "S3_BUCKET": f"test-{uuid.uuid4().hex[:12]}",
        "S3_ENDPOINT_URL": server.url,
        "S3_REGION": server.region,
        "S3_PUBLIC_READ": server.public_read,
        "S3_CONDITIONAL_COPY": server.conditional_copy,
        "AWS_ACCESS_KEY_ID": server.access_key_id,
        "AWS_SECRET_ACCESS_KEY": server.secret_access_key,
        "SCHEMA_DIR": str(unscanned_schema()),
    }
    env.update({k: str(v) for k, v in overrides.items()})
    return Settings.from_env(env)


class Harness:
    """The app under test plus a raw client of its storage to look behind its back: `s3` (S3 backends)
    or `azure` (Azurite: the account's BlobServiceClient)."""

    def __init__(self, app: Any, settings: Settings, http: httpx.AsyncClient, s3: Any, server: StorageServer) -> None:
        self.app = app
        self.settings = settings
        self.http = http
        self.server = server
        self.s3 = None if server.name == "azurite" else s3
        self.azure = s3 if server.name == "azurite" else None
        azure = settings.storage_backend == "azure"
        self.bucket = str(settings.azure_container) if azure else settings.s3_bucket
        self.containers = [c for c in (settings.azure_container, settings.azure_public_container) if c] if azure else []

    async def gql(self, query: str, variables: dict[str, Any] | None = None, **headers: str) -> dict[str, Any]:
        response = await self.http.post(
            "/graphql", json={"query": query, "variables": variables or {}}, headers=headers
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def ok(self, query: str, variables: dict[str, Any] | None = None, **headers: str) -> dict[str, Any]:
        body = await self.gql(query, variables, **headers)
        assert not body.get("errors"), body["errors"]
        data: dict[str, Any] = body["data"]
        return data

    async def error_code(self, query: str, variables: dict[str, Any] | None = None, **headers: str) -> str:
        body = await self.gql(query, variables, **headers)
        assert body.get("errors"), f"expected an error, got {body}"
        code: str = body["errors"][0]["extensions"]["code"]
        return code

    async def keys(self) -> list[str]:
        """Every key in storage (on Azure: in either container, blobs of uncommitted blocks too)."""
        if self.azure is not None:
            names: set[str] = set()
            for name in self.containers:
                container = self.azure.get_container_client(name)
                names.update([b.name async for b in container.list_blobs(include=["uncommittedblobs"])])
            return sorted(names)
        result = await self.s3.list_objects_v2(Bucket=self.bucket)
        return sorted(o["Key"] for o in result.get("Contents", []))


async def post_form(presigned: dict[str, Any], data: bytes, file_name: str, content_type: str) -> httpx.Response:
    """POST the multipart form exactly as a browser does: every payload field in order, file last."""
    fields = dict(presigned["upload_url_payload"])
    if fields.get("Content-Type") == "":
        fields["Content-Type"] = content_type
    async with httpx.AsyncClient(timeout=30) as client:
        return await client.post(presigned["upload_url"], data=fields, files={"file": (file_name, data, content_type)})


def uploaded_key(presigned: dict[str, Any], file_name: str) -> str:
    key: str = presigned["key"]
    return key.replace("${filename}", file_name)


def s3_client(server: StorageServer) -> Any:
    """A raw client of the server, to look behind the app's back (an async context manager): S3, or
    for Azurite the account's BlobServiceClient."""
    if server.name == "azurite":
        from azure.storage.blob.aio import BlobServiceClient

        from app.storage.azure import API_VERSION

        credential = {"account_name": server.account, "account_key": server.key.value}
        return BlobServiceClient(server.endpoint, credential=credential, api_version=API_VERSION)
    session = aioboto3.Session(
        aws_access_key_id=server.access_key_id,
        aws_secret_access_key=server.secret_access_key,
        region_name=server.region,
    )
    return session.client("s3", endpoint_url=server.url, config=Config(signature_version="s3v4"))


@pytest.fixture
async def harness_factory(storage_server: StorageServer, database_url: str) -> AsyncIterator[Any]:
    """Build apps with setting overrides; every app gets its own bucket and is shut down after (the
    bucket is removed too, except on moto, which forgets it anyway)."""
    stack: list[Any] = []
    buckets: list[str] = []

    async def make(**overrides: Any) -> Harness:
        settings = make_settings(storage_server, database_url, **overrides)
        app = create_app(settings)
        lifespan = app.router.lifespan_context(app)
        await lifespan.__aenter__()
        stack.append(lifespan)
        await app.state.services.storage.ensure_bucket(())
        azure = [c for c in (settings.azure_container, settings.azure_public_container) if c]
        buckets.extend(azure if settings.storage_backend == "azure" else [settings.s3_bucket])
        http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")
        stack.append(http)
        s3_cm = s3_client(storage_server)
        s3 = await s3_cm.__aenter__()
        stack.append(s3_cm)
        return Harness(app, settings, http, s3, storage_server)

    yield make
    for item in reversed(stack):
        await item.__aexit__(None, None, None)
    if storage_server.name != "moto" and buckets:
        await remove_buckets(storage_server, buckets)


async def remove_buckets(server: StorageServer, buckets: list[str]) -> None:
    if server.name == "azurite":
        async with s3_client(server) as service:
            for name in buckets:
                await service.delete_container(name)
        return
    async with s3_client(server) as s3:
        for bucket in buckets:
            paginator = s3.get_paginator("list_objects_v2")
            async for page in paginator.paginate(Bucket=bucket):
                keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
                if keys:
                    await s3.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})
            uploads = await s3.list_multipart_uploads(Bucket=bucket)
            for u in uploads.get("Uploads", []):
                await s3.abort_multipart_upload(Bucket=bucket, Key=u["Key"], UploadId=u["UploadId"])
            await s3.delete_bucket(Bucket=bucket)


@pytest.fixture
async def h(harness_factory: Any) -> Harness:
    harness: Harness = await harness_factory()
    return harness


@pytest.fixture(scope="session")
def clamd() -> Iterator[Any]:
    """One real clamd for the session (the EICAR test signature; 100 MiB StreamMaxLength), reachable
    over TCP (`clamd.address`) and a unix socket (`clamd.unix_socket`)."""
    from tests.scanning import clamd_with_socket

    with clamd_with_socket() as server:
        yield server
