"""`make run` with STORAGE_BACKEND=azure and no Azure account: Azurite as the embedded storage."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from app.embedded import azurite
from app.embedded.process import free_port
from app.run import describe_storage, with_embedded_azurite
from app.settings import Settings
from app.storage.azure import AzureConfig, AzureStorage
from app.storage.base import ObjectHeaders


def test_azurite_starts_with_the_container_and_cors_for_the_page(tmp_path: Path) -> None:
    settings = Settings.from_env({"STORAGE_BACKEND": "azure", "STORAGE_PORT": str(free_port()), "PORT": "8765"})
    settings, embedded = with_embedded_azurite(settings, location=tmp_path)
    assert embedded is not None
    try:
        assert settings.azure_blob_endpoint == embedded.url == azurite.blob_endpoint("127.0.0.1", settings.storage_port)
        assert (settings.azure_storage_account, settings.azure_container) == ("devstoreaccount1", "uploads")
        assert settings.embedded_storage and settings.database_url == "sqlite://var/embedded-azure.sqlite3"
        assert "embedded (Azurite)" in describe_storage(settings, embedded)
        blob = f"{embedded.url}/uploads/photos/image/x.png"
        preflight = {"Access-Control-Request-Method": "PUT", "Access-Control-Request-Headers": "x-ms-blob-type"}
        for origin in ("http://127.0.0.1:8765", "http://localhost:8765"):
            answer = httpx.options(blob, headers={"Origin": origin, **preflight})
            assert answer.status_code == 200 and answer.headers["access-control-allow-origin"] == origin
        assert (tmp_path / "azurite.log").exists()
        asyncio.run(put(settings, "photos/image/x.png", b"kept"))
    finally:
        embedded.stop()
    # Started again on the same port and data (right after a stop): the container and its blob are there.
    again, embedded = with_embedded_azurite(settings, location=tmp_path)
    assert embedded is not None
    try:
        assert again.azure_blob_endpoint == settings.azure_blob_endpoint
        assert httpx.get(blob).content == b"kept"  # the embedded container allows anonymous reads
    finally:
        embedded.stop()


async def put(settings: Settings, key: str, data: bytes) -> None:
    storage = AzureStorage(AzureConfig.from_settings(settings))
    await storage.start()
    try:
        await storage.put(key, data, ObjectHeaders("image/png"))
    finally:
        await storage.close()


def test_an_azure_account_starts_nothing() -> None:
    env = {
        "STORAGE_BACKEND": "azure",
        "AZURE_STORAGE_ACCOUNT": "myaccount",
        "AZURE_STORAGE_KEY": azurite.KEY.value,
        "AZURE_CONTAINER": "uploads",
    }
    settings = Settings.from_env(env)
    assert with_embedded_azurite(settings) == (settings, None)
    assert describe_storage(settings, None) == "Azure account myaccount, container uploads"
