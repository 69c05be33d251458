"""A real clamd for the tests (app/embedded/clamd.py with the EICAR test signature), and files to scan."""

from __future__ import annotations

import io
import os
import tempfile
import zipfile
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from app.embedded.clamd import (
    DEFAULT_STREAM_MAX_LENGTH,
    EICAR,
    OFFICIAL_DATABASES,
    EmbeddedClamd,
    start_clamd,
)
from tests import files


def started_clamd(
    home: Path,
    *,
    port: int | None = None,
    unix_socket: Path | None = None,
    stream_max_length: int = DEFAULT_STREAM_MAX_LENGTH,
    official: Path = OFFICIAL_DATABASES,
) -> EmbeddedClamd:
    """clamd under `home`; without clamav-daemon the test is skipped, or fails when CI is set."""
    clamd = start_clamd(
        home, port=port, unix_socket=unix_socket, stream_max_length=stream_max_length, official=official
    )
    if clamd is None:
        message = "clamd is not installed (Debian package clamav-daemon; `make test-deps` installs it as root)"
        if os.environ.get("CI"):
            raise RuntimeError(message)
        pytest.skip(message)
    return clamd


@contextmanager
def clamd_with_socket(stream_max_length: int = DEFAULT_STREAM_MAX_LENGTH) -> Iterator[EmbeddedClamd]:
    """clamd on a free TCP port and on a unix socket (in a short directory: socket paths are limited to
    108 bytes, which pytest's temporary directories can exceed)."""
    with tempfile.TemporaryDirectory(prefix="clamd-") as home:
        clamd = started_clamd(Path(home), unix_socket=Path(home) / "clamd.sock", stream_max_length=stream_max_length)
        try:
            yield clamd
        finally:
            clamd.stop()


async def chunked(data: bytes, size: int = 64 * 1024) -> AsyncIterator[bytes]:
    """`data` as a storage stream hands it over: in chunks."""
    for start in range(0, len(data), size):
        yield data[start : start + size]


def pdf_with(payload: bytes) -> bytes:
    """A PDF-shaped file carrying `payload` in a stream object before its trailer."""
    clean = files.pdf()
    cut = clean.index(b"xref")
    stream = b"4 0 obj\n<< /Length %d >>\nstream\n" % len(payload) + payload + b"\nendstream\nendobj\n"
    return clean[:cut] + stream + clean[cut:]


def zip_with(name: str, payload: bytes) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("readme.txt", b"a harmless note\n" * 100)
        archive.writestr(name, payload)
    return out.getvalue()


def eicar_in_a_zip() -> bytes:
    data = zip_with("report.pdf", pdf_with(EICAR))
    assert EICAR not in data  # deflated: only clamd's unpacking can find it
    return data
