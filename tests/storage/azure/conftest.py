"""Azure-specific storage tests: the session's Azurite (tests/conftest.py) and a started adapter on
containers of its own. The contract every backend keeps is tests/storage/test_contract.py."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from app.storage.azure import AzureConfig, AzureStorage
from tests.conftest import AzuriteServer, remove_buckets
from tests.storage.contract import PAGE_ORIGIN

__all__ = ["PAGE_ORIGIN"]


async def started(config: AzureConfig) -> AzureStorage:
    storage = AzureStorage(config)
    await storage.start()
    await storage.ensure_bucket([PAGE_ORIGIN])
    return storage


@pytest.fixture
async def azure_storage(azurite_server: AzuriteServer) -> AsyncIterator[AzureStorage]:
    """A started adapter on a private container and a public one of its own."""
    config = azurite_server.config()
    storage = await started(config)
    yield storage
    await storage.close()
    await remove_buckets(azurite_server, [config.container, str(config.public_container)])
