"""The Azure settings: each value checked on its own, then together; the key never prints."""

from __future__ import annotations

import pytest

from app.embedded import azurite
from app.services import storage_for
from app.settings import Settings, SettingsError
from app.storage.azure import AzureConfig, AzureStorage
from app.tables import load_tables

KEY = azurite.KEY.value
ACCOUNT = {"STORAGE_BACKEND": "azure", "AZURE_STORAGE_ACCOUNT": "myaccount", "AZURE_STORAGE_KEY": KEY}


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"STORAGE_BACKEND": "gcs"}, "STORAGE_BACKEND='gcs' must be s3 or azure"),
        ({"AZURE_STORAGE_ACCOUNT": "My_Account"}, "AZURE_STORAGE_ACCOUNT='My_Account' must be 3-24 lowercase"),
        ({"AZURE_STORAGE_KEY": "not base64!"}, "AZURE_STORAGE_KEY is not valid base64"),
        ({"AZURE_CONTAINER": "Uploads"}, "AZURE_CONTAINER='Uploads' must be 3-63 lowercase"),
        ({"AZURE_CONTAINER": "up--loads"}, "AZURE_CONTAINER='up--loads' must be"),
        ({"AZURE_CONTAINER": "up"}, "AZURE_CONTAINER='up' must be"),
        ({"AZURE_PUBLIC_CONTAINER": "Public"}, "AZURE_PUBLIC_CONTAINER='Public' must be 3-63 lowercase"),
        (
            {**ACCOUNT, "AZURE_CONTAINER": "uploads", "AZURE_PUBLIC_CONTAINER": "uploads"},
            "AZURE_PUBLIC_CONTAINER must differ from AZURE_CONTAINER",
        ),
        ({"AZURE_BLOB_ENDPOINT": "127.0.0.1:10000"}, "AZURE_BLOB_ENDPOINT='127.0.0.1:10000' must start with http"),
        (ACCOUNT, "STORAGE_BACKEND=azure needs AZURE_CONTAINER as well"),
        (
            {"STORAGE_BACKEND": "azure", "AZURE_BLOB_ENDPOINT": "http://127.0.0.1:10000/devstoreaccount1"},
            "needs AZURE_STORAGE_ACCOUNT and AZURE_STORAGE_KEY and AZURE_CONTAINER",
        ),
        (
            {"STORAGE_BACKEND": "azure", "AZURE_STORAGE_KEY": KEY, "AZURE_CONTAINER": "uploads"},
            "STORAGE_BACKEND=azure needs AZURE_STORAGE_ACCOUNT as well",
        ),
    ],
)
def test_bad_azure_settings_name_what_to_change(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError) as info:
        Settings.from_env(env)
    assert message in str(info.value)
    assert "not base64!" not in str(info.value)  # a secret is never echoed


def test_a_complete_azure_configuration() -> None:
    s = Settings.from_env({**ACCOUNT, "AZURE_CONTAINER": "uploads", "AZURE_PUBLIC_CONTAINER": "uploads-public"})
    assert (s.storage_backend, s.azure_storage_account, s.azure_container) == ("azure", "myaccount", "uploads")
    assert s.azure_configured and KEY not in repr(s) and s.azure_storage_key.value == KEY
    config = AzureConfig.from_settings(s)
    assert config.blob_endpoint == "https://myaccount.blob.core.windows.net"
    assert (config.container, config.public_container) == ("uploads", "uploads-public")
    assert KEY not in repr(config)
    storage = storage_for(s, load_tables(s.schema_dir))
    assert isinstance(storage, AzureStorage)
    assert storage.public_url("photos/image/t/a.png").startswith(
        "https://myaccount.blob.core.windows.net/uploads-public/"
    )


def test_public_upload_properties_need_the_public_container() -> None:
    """Azure has no per-blob ACL: without AZURE_PUBLIC_CONTAINER a public file would be unreadable
    (or the private container readable by all); start-up says so, naming the properties."""
    s = Settings.from_env({**ACCOUNT, "AZURE_CONTAINER": "uploads"})
    tables = load_tables(s.schema_dir)
    with pytest.raises(SettingsError) as info:
        storage_for(s, tables)
    assert "photos.image" in str(info.value) and "set AZURE_PUBLIC_CONTAINER" in str(info.value)
    assert "documents.resume" not in str(info.value)  # private: it needs no public container
    private_only = {name: t for name, t in tables.items() if name == "documents"}
    assert isinstance(storage_for(s, private_only), AzureStorage)


def test_s3_stays_the_default_and_ignores_the_azure_settings() -> None:
    s = Settings.from_env({"AZURE_STORAGE_ACCOUNT": "myaccount"})
    assert s.storage_backend == "s3"


def test_azure_without_an_account_is_left_to_make_runs_azurite() -> None:
    s = Settings.from_env({"STORAGE_BACKEND": "azure"})
    assert not s.azure_configured
    with pytest.raises(SettingsError) as info:  # anything but `make run` cannot build the storage
        AzureConfig.from_settings(s)
    assert "AZURE_STORAGE_ACCOUNT, AZURE_STORAGE_KEY, AZURE_CONTAINER" in str(info.value)
    assert "make run" in str(info.value)
