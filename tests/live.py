"""The server as `make run` starts it (`python -m app.run`: embedded SeaweedFS storage, or Azurite with
STORAGE_BACKEND=azure, and moto's SQS, migrations, uvicorn), in a subprocess on free ports with its data
in a test folder, for the tests that need a real browser or a Node client, or `make run` itself."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest

from app.embedded import seaweedfs
from app.settings import ROOT
from tests.conftest import free_port


class LiveServer:
    def __init__(
        self,
        base_url: str,
        storage_url: str,
        process: subprocess.Popen[bytes],
        log_path: Path,
        data_dir: Path,
        backend: str = "s3",
    ) -> None:
        self.url = base_url
        self.storage_url = storage_url  # the embedded SeaweedFS (its S3 front), or Azurite
        self.process = process
        self.log_path = log_path
        self.data_dir = data_dir  # the embedded storage's folder
        self.backend = backend  # STORAGE_BACKEND: s3 | azure

    def s3(self) -> Any:
        """A boto3 client of the embedded storage, with the identity the server made for itself."""
        creds = seaweedfs.credentials(self.data_dir / "seaweedfs")
        return boto3.client(
            "s3",
            endpoint_url=self.storage_url,
            region_name="us-east-1",
            aws_access_key_id=creds.access_key_id,
            aws_secret_access_key=creds.secret_access_key,
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]


def start_live_server(
    tmp: Path, *, port: int | None = None, storage_port: int | None = None, database: bool = True, **settings: str
) -> LiveServer:
    """`settings`: more environment for the server (e.g. SCHEMA_DIR). The embedded storage keeps its
    data under `tmp`/embedded; `database` False keeps the records there too, as a plain `make run`."""
    port, storage_port = port or free_port(), storage_port or free_port()
    env = {
        **os.environ,
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "STORAGE_PORT": str(storage_port),
        "EMBEDDED_DIR": str(tmp / "embedded"),
        "LOG_LEVEL": "WARNING",
    }
    for name in ("S3_ENDPOINT_URL", "S3_BUCKET", "CORS_ORIGINS", "QUEUE_URL", "DATABASE_URL"):
        env.pop(name, None)  # the embedded storage, exactly as a fresh `make run`
    if database:
        env["DATABASE_URL"] = f"sqlite://{tmp / 'live.sqlite3'}"
    env.update(settings)
    log_path = tmp / f"server-{port}.log"
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "app.run"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a process group of its own, as a terminal gives `make run`
        )
    data_dir = tmp / "embedded" / str(storage_port)
    server = LiveServer(
        f"http://127.0.0.1:{port}",
        f"http://127.0.0.1:{storage_port}",
        process,
        log_path,
        data_dir,
        settings.get("STORAGE_BACKEND", "s3"),
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"python -m app.run exited with {process.returncode}:\n{server.log()}")
        try:
            if httpx.get(server.url + "/readyz", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    stop_live_server(server)
    raise RuntimeError(f"python -m app.run was not ready within 60 s:\n{server.log()}")


def stop_live_server(server: LiveServer, sig: int = signal.SIGTERM) -> None:
    """Stop it as a process manager does (SIGTERM), or as Ctrl-C does (SIGINT, to every process of
    the group: the server and the storage it started)."""
    if server.process.poll() is None:
        if sig == signal.SIGINT:
            os.killpg(server.process.pid, sig)  # its own session: the group is the server's
        else:
            server.process.send_signal(sig)
        try:
            server.process.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(server.process.pid, signal.SIGKILL)  # with the storage it started
            server.process.wait(5)


@pytest.fixture(scope="module")
def live_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """`make run`'s server for a module; a test parametrized indirectly with "azure" gets one on
    Azurite (STORAGE_BACKEND=azure), else on SeaweedFS."""
    backend = getattr(request, "param", "s3")
    settings = {"STORAGE_BACKEND": "azure"} if backend == "azure" else {}
    server = start_live_server(tmp_path_factory.mktemp(f"live-{backend}"), **settings)
    yield server
    stop_live_server(server)


def app_from_env() -> Any:
    """The app as `uvicorn --factory tests.live:app_from_env` serves it: configured from the environment,
    without `make run`'s embedded parts (for tests that run several API processes on one database)."""
    from app.main import create_app
    from app.settings import Settings

    return create_app(Settings.from_env())


def start_api_process(env: dict[str, str], log_path: Path) -> tuple[str, subprocess.Popen[bytes]]:
    """One uvicorn process of the app (uvloop, httptools, as `make run`) on a free port; its URL."""
    port = free_port()
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "--factory",
                "tests.live:app_from_env",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--loop",
                "uvloop",
                "--http",
                "httptools",
                "--no-access-log",
            ],
            cwd=ROOT,
            env={**os.environ, "LOG_LEVEL": "WARNING", **env},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the API process exited with {process.returncode}:\n{log_path.read_text()}")
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return url, process
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    process.kill()
    raise RuntimeError("the API process did not answer within 30 s")
