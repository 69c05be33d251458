"""Azurite, the Azure Storage emulator, as embedded blob storage: `make run` with STORAGE_BACKEND=azure
and no Azure account, and the Azure storage tests.

It is the npm package pinned in tools/azurite (installed there by `make azurite`, never globally). Its
blob service checks SAS signatures, expiry, permissions and scope, and Content-MD5, and honours CORS;
like Azure it limits neither size nor type. Data lives under the given folder and survives restarts.
"""

from __future__ import annotations

import shutil
import urllib.error
import urllib.request
from pathlib import Path

from app.embedded import process
from app.embedded.process import EmbeddedError, EmbeddedProcess
from app.settings import ROOT, Secret

# Azurite's one built-in account and its key: published in Azure's documentation, the same in every
# Azurite, so never a secret of anyone's.
ACCOUNT = "devstoreaccount1"
KEY = Secret("Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==")
BINARY = ROOT / "tools" / "azurite" / "node_modules" / ".bin" / "azurite-blob"


def blob_endpoint(host: str, port: int) -> str:
    """The blob service URL of the built-in account (path-style, as Azurite serves it on an IP)."""
    return f"http://{host}:{port}/{ACCOUNT}"


def answers(host: str, port: int) -> bool:
    """Azurite answers HTTP (an unauthenticated request is refused, which is an answer)."""
    try:
        urllib.request.urlopen(f"http://{host}:{port}/{ACCOUNT}?comp=list", timeout=1).close()
    except urllib.error.HTTPError:
        return True
    except (urllib.error.URLError, OSError):
        return False
    return True


def start(host: str, port: int, location: Path, *, setting: str = "STORAGE_PORT") -> EmbeddedProcess:
    """Start Azurite's blob service on host:port with its data in `location`; returns once it answers.
    `setting` is what to change when the port is taken."""
    if not BINARY.exists():
        raise EmbeddedError(f"Azurite is not installed ({BINARY} is missing): run `make azurite`")
    if shutil.which("node") is None:
        raise EmbeddedError("Azurite needs Node.js 20+ (`node` is not on PATH)")
    location.mkdir(parents=True, exist_ok=True)
    command = [
        str(BINARY),
        "--blobHost",
        host,
        "--blobPort",
        str(port),
        "--location",
        str(location),
        "--disableTelemetry",  # Azurite otherwise reports usage over the network
        "--silent",  # no access log
    ]
    return process.start(
        "Azurite",
        command,
        url=blob_endpoint(host, port),
        ready=lambda: answers(host, port),
        ports=[(host, port, setting)],
        log_path=location / "azurite.log",
    )
