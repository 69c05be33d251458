"""Settings fail loudly with the variable's name; secrets never print."""

from __future__ import annotations

import os
import re

import pytest

from app.settings import ROOT, Settings, SettingsError, describe


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"PRESIGN_EXPIRES_IN": "soon"}, "PRESIGN_EXPIRES_IN='soon' is not an integer"),
        ({"PRESIGN_EXPIRES_IN": "10"}, "PRESIGN_EXPIRES_IN=10 is out of range"),
        ({"PORT": "70000"}, "PORT=70000 is out of range"),
        ({"WORKER_METRICS_PORT": "-1"}, "WORKER_METRICS_PORT=-1 is out of range"),
        ({"S3_ENDPOINT_URL": "localhost:9000"}, "S3_ENDPOINT_URL='localhost:9000' must start with http"),
        ({"DATABASE_URL": "mysql://x"}, "DATABASE_URL must be sqlite"),
        ({"SCHEMA_DIR": "/nonexistent"}, "SCHEMA_DIR='/nonexistent' is not a directory"),
        ({"DEBUG": "maybe"}, "DEBUG='maybe' is not a boolean"),
        ({"S3_ADDRESSING_STYLE": "dns"}, "S3_ADDRESSING_STYLE='dns'"),
        ({"WORKER_CONCURRENCY": "0"}, "WORKER_CONCURRENCY=0 is out of range 1..256"),
        ({"WORKER_CONCURRENCY": "all"}, "WORKER_CONCURRENCY='all' is not an integer"),
        ({"KEEP_ALIVE_SECONDS": "0"}, "KEEP_ALIVE_SECONDS=0 is out of range 1..3600"),
    ],
)
def test_bad_values_name_the_setting(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError) as info:
        Settings.from_env(env)
    assert message in str(info.value)


def test_defaults_and_secrets() -> None:
    s = Settings.from_env({"AWS_SECRET_ACCESS_KEY": "hunter2", "CORS_ORIGINS": "http://a.test/, http://b.test"})
    assert s.presign_expires_in == 900 and s.s3_bucket == "uploads" and s.database_url.startswith("sqlite://")
    assert s.cors_origins == ("http://a.test", "http://b.test")
    assert "hunter2" not in repr(s) and "hunter2" not in str(s.s3_secret_access_key)
    assert s.s3_secret_access_key.value == "hunter2"
    assert s.keep_alive_seconds == 75
    assert Settings.from_env({"KEEP_ALIVE_SECONDS": "120"}).keep_alive_seconds == 120


def test_worker_concurrency_defaults_to_the_cpu_count() -> None:
    assert Settings.from_env({}).worker_concurrency == (os.cpu_count() or 1)
    assert Settings.from_env({"WORKER_CONCURRENCY": "3"}).worker_concurrency == 3


def test_every_setting_is_described_once() -> None:
    rows = describe()
    names = [r.env.split(" / ")[0] for r in rows]
    assert len(names) == len(set(names))
    assert {"DATABASE_URL", "S3_BUCKET", "LOG_FORMAT", "SWEEP_GRACE", "STORAGE_PORT"} <= set(names)
    assert all(r.doc and r.group for r in rows)
    secret_row = next(r for r in rows if r.env == "AWS_SECRET_ACCESS_KEY")
    assert secret_row.default == ""


def test_given_names_what_the_environment_set() -> None:
    s = Settings.from_env({"S3_BUCKET": "b", "PORT": "", "AWS_DEFAULT_REGION": "eu-west-1"})
    assert s.given == {"S3_BUCKET", "AWS_DEFAULT_REGION"} and s.s3_region == "eu-west-1"


def test_only_settings_reads_the_environment() -> None:
    readers = [
        path.relative_to(ROOT)
        for path in (ROOT / "app").rglob("*.py")
        if path.name != "settings.py" and re.search(r"os\.environ|getenv\(", path.read_text())
    ]
    assert readers == []
