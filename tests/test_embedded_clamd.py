"""The local clamd of `make run` and the tests: its database, its start-up, and what `make run` does
with it (or without it)."""

from __future__ import annotations

import logging
import socket
from pathlib import Path

import pytest

from app.embedded import clamd as embedded_clamd
from app.embedded.clamd import EICAR, EICAR_FOUND, for_make_run, start_clamd
from app.embedded.process import EmbeddedError, free_port
from app.run import with_local_scanner
from app.scanner import Clamd
from app.settings import ROOT, Settings
from tests import files
from tests.scanning import chunked, pdf_with, started_clamd

MARKER = b"an official database's signature matches this"


async def test_official_databases_are_loaded_beside_the_test_signature(tmp_path: Path) -> None:
    official = tmp_path / "official"
    official.mkdir()
    (official / "extra.ndb").write_text(f"Official.Marker:0:*:{MARKER.hex()}\n")
    (official / "freshclam.dat").write_bytes(b"freshclam's state, not a database")
    (official / "daily.cld.tmp").write_text("garbage a half-finished download leaves")
    server = started_clamd(tmp_path / "home", official=official)
    try:
        assert server.official == ["extra.ndb"]
        assert sorted(p.name for p in (server.home / "db").iterdir()) == ["extra.ndb", "uploads-test.ndb"]
        scanner = Clamd(server.address)
        assert (await scanner.scan(chunked(pdf_with(MARKER)))).detail == "Official.Marker.UNOFFICIAL"
        assert (await scanner.scan(chunked(pdf_with(EICAR)))).detail == EICAR_FOUND
        assert (await scanner.scan(chunked(files.pdf()))).clean
    finally:
        server.stop()
    assert not server.home.exists()  # a clean stop leaves nothing behind


def test_without_clamd_it_says_so_and_starts_nothing(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, "app.embedded.clamd"):
        assert start_clamd(tmp_path, clamd=tmp_path / "clamd") is None
    assert "clamd is not installed (Debian package clamav-daemon: apt-get install -y clamav-daemon" in caplog.text
    assert "`scan: true` stay pending" in caplog.text


def test_a_clamd_that_does_not_start_says_where_to_look(tmp_path: Path) -> None:
    official = tmp_path / "official"
    official.mkdir()
    (official / "broken.ndb").write_text("not a signature\n")
    with pytest.raises(EmbeddedError, match=r"clamd exited with code 1 while starting; its output is in .*clamd\.log"):
        started_clamd(tmp_path / "home", official=official)
    assert "Malformed database" in (tmp_path / "home" / "clamd.log").read_text()


def test_a_taken_port_names_the_setting(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(EmbeddedError, match=r"port \d+ on 127\.0\.0\.1 is taken; set CLAMD_ADDRESS"):
            started_clamd(tmp_path, port=taken.getsockname()[1])


async def test_make_run_starts_a_local_clamd_and_points_the_settings_at_it() -> None:
    port = free_port()
    settings, server = for_make_run(Settings.from_env({"PORT": str(port)}))
    assert server is not None
    try:
        assert server.home == ROOT / "var" / "clamd" / str(port)
        assert settings.clamd_address == server.address
        scanner = Clamd(settings.clamd_address)
        await scanner.ping()
        assert (await scanner.scan(chunked(pdf_with(EICAR)))).detail == EICAR_FOUND
    finally:
        server.stop()
    assert not server.home.exists()


def test_make_run_uses_the_clamd_configured() -> None:
    settings = Settings.from_env({"CLAMD_ADDRESS": "clamav.internal:3310"})
    assert for_make_run(settings) == (settings, None)


def test_make_run_without_clamd_runs_without_a_scanner(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(embedded_clamd, "_SEARCH_PATH", str(tmp_path))  # a machine without clamav-daemon
    settings = Settings.from_env({"PORT": str(free_port())})
    with caplog.at_level(logging.WARNING, "app.embedded.clamd"):
        assert for_make_run(settings) == (settings, None)
    assert "no virus scanner: clamd is not installed (Debian package clamav-daemon" in caplog.text


def test_a_deployment_with_its_own_storage_gets_no_local_clamd() -> None:
    # Configured storage means a deployment: it names its scanner with CLAMD_ADDRESS, and a clamd
    # started behind its back would leave scanned files depending on a process nobody runs.
    for given in ({"S3_ENDPOINT_URL": "https://s3.example.com"}, {"S3_BUCKET": "uploads"}):
        settings = Settings.from_env({"PORT": str(free_port()), **given})
        assert with_local_scanner(settings) == (settings, None)
