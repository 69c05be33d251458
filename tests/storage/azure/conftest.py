"""Azurite for the Azure storage tests: one server for the session, a fresh container per test.

`azure_storage` yields a started `AzureStorage`: the fixture a parametrized contract suite
(tests/storage/) takes as one of its backends.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from app.embedded import azurite
from app.embedded.process import EmbeddedProcess, free_port
from app.storage.azure import AzureConfig, AzureStorage

# The demo page's origin in the tests: what the container's CORS rules allow.
PAGE_ORIGIN = "http://127.0.0.1:8000"


@dataclass
class Azurite:
    host: str
    port: int
    location: Path
    process: EmbeddedProcess | None = None

    @property
    def endpoint(self) -> str:
        return azurite.blob_endpoint(self.host, self.port)

    def start(self) -> None:
        self.process = azurite.start(self.host, self.port, self.location, setting="a free port")

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
            self.process = None

    def config(self, container: str | None = None, **changes: object) -> AzureConfig:
        values: dict[str, object] = {
            "account": azurite.ACCOUNT,
            "key": azurite.KEY,
            "container": container or f"t{uuid.uuid4().hex[:20]}",
            "endpoint": self.endpoint,
            **changes,
        }
        return AzureConfig(**values)  # type: ignore[arg-type]


def start_azurite(location: Path) -> Azurite:
    server = Azurite("127.0.0.1", free_port(), location)
    server.start()
    return server


@pytest.fixture(scope="session")
def azurite_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    server = start_azurite(tmp_path_factory.mktemp("azurite"))
    yield server
    server.stop()


async def started(config: AzureConfig) -> AzureStorage:
    storage = AzureStorage(config)
    await storage.start()
    await storage.ensure_bucket([PAGE_ORIGIN])
    return storage


@pytest.fixture
async def azure_storage(azurite_server: Azurite) -> AsyncIterator[AzureStorage]:
    """A started adapter on a container of its own (private: no anonymous reads)."""
    storage = await started(azurite_server.config())
    yield storage
    await storage.close()
