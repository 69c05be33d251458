"""The clamd client against a real clamd: verdicts, streams above StreamMaxLength, memory, outages,
concurrency, and a clamd that misbehaves (stops reading, never answers, answers nonsense)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
import tracemalloc
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import uvloop

from app.embedded.clamd import EICAR, EICAR_FOUND, EmbeddedClamd
from app.embedded.process import free_port
from app.errors import ScannerUnavailable
from app.scanner import Clamd, ScanResult, ScanStatus
from app.settings import Settings, SettingsError, SocketAddress, describe
from tests import files
from tests.scanning import chunked, clamd_with_socket, eicar_in_a_zip, pdf_with, started_clamd, zip_with

MiB = 1024 * 1024
SMALL_LIMIT = 1 * MiB


@pytest.fixture(scope="module")
def small_clamd() -> Iterator[EmbeddedClamd]:
    """clamd refusing streams above 1 MiB (StreamMaxLength; MaxFileSize the same)."""
    with clamd_with_socket(stream_max_length=SMALL_LIMIT) as server:
        yield server


def client(clamd: EmbeddedClamd, **options: float) -> Clamd:
    return Clamd(clamd.address, **options)


def rss_kib(field: str) -> int:
    """VmRSS (resident now) or VmHWM (the peak) of this process, in KiB."""
    line = next(x for x in Path("/proc/self/status").read_text().splitlines() if x.startswith(field + ":"))
    return int(line.split()[1])


def reset_peak_rss() -> None:
    Path("/proc/self/clear_refs").write_text("5")  # Linux: VmHWM starts again from VmRSS


class Endless:
    """A stream that never ends on its own: the client must stop when clamd refuses it."""

    def __init__(self, chunk: int = 64 * 1024) -> None:
        self.chunk = chunk
        self.pulled = 0
        self.closed = False

    async def stream(self) -> AsyncIterator[bytes]:
        try:
            while True:
                self.pulled += 1
                yield b"z" * self.chunk
        finally:
            self.closed = True


async def test_ping_and_version(clamd: EmbeddedClamd) -> None:
    scanner = client(clamd)
    await scanner.ping()
    assert (await scanner.version()).startswith("ClamAV 1.")


async def test_a_clean_pdf_is_clean(clamd: EmbeddedClamd) -> None:
    data = files.pdf()
    assert await client(clamd).scan(chunked(data)) == ScanResult(ScanStatus.CLEAN, None, len(data))


async def test_eicar_inside_a_pdf_is_infected(clamd: EmbeddedClamd) -> None:
    data = pdf_with(EICAR)
    result = await client(clamd).scan(chunked(data, 100))
    assert result == ScanResult(ScanStatus.INFECTED, EICAR_FOUND, len(data))
    assert not result.clean


async def test_eicar_inside_a_zip_is_infected(clamd: EmbeddedClamd) -> None:
    result = await client(clamd).scan(chunked(eicar_in_a_zip()))
    assert (result.status, result.detail) == (ScanStatus.INFECTED, EICAR_FOUND)


async def test_chunk_boundaries_and_empty_chunks_do_not_hide_anything(clamd: EmbeddedClamd) -> None:
    # A zero-length chunk ends an INSTREAM: sent as is, clamd would scan only "%PDF-1.4\n" and find
    # it clean. Single bytes and a 3 MiB chunk (sent in 1 MiB pieces) around the test string.
    async def awkward() -> AsyncIterator[bytes]:
        yield b"%PDF-1.4\n"
        yield b""
        for byte in EICAR[:20]:
            yield bytes([byte])
        yield b""
        yield EICAR[20:]
        yield b"\0" * (3 * MiB)

    result = await client(clamd).scan(awkward())
    assert (result.status, result.detail, result.size) == (ScanStatus.INFECTED, EICAR_FOUND, 9 + len(EICAR) + 3 * MiB)


async def test_a_50_mb_stream_is_scanned_with_bounded_memory(clamd: EmbeddedClamd) -> None:
    size, chunk = 50 * MiB, MiB

    async def stream() -> AsyncIterator[bytes]:
        for _ in range(size // chunk):
            yield os.urandom(chunk)  # a new buffer each time, as a storage stream reads them

    reset_peak_rss()
    before = rss_kib("VmRSS")
    tracemalloc.start()
    try:
        result = await client(clamd, scan_timeout=120).scan(stream())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    growth = (rss_kib("VmHWM") - before) * 1024
    assert result == ScanResult(ScanStatus.CLEAN, None, size)
    # The chunk being sent and the one being made, never the file: under 8 % of it.
    assert peak < 4 * chunk, f"Python allocations peaked at {peak / MiB:.1f} MiB"
    assert growth < 5 * MiB, f"resident memory grew by {growth / MiB:.1f} MiB for a {size // MiB} MiB stream"


@pytest.mark.parametrize("over", ["tcp", "unix"])
async def test_a_stream_above_stream_max_length_fails_quickly(small_clamd: EmbeddedClamd, over: str) -> None:
    address = small_clamd.address if over == "tcp" else small_clamd.unix_socket
    assert address is not None
    # clamd answers and closes while we are still sending; every time, the answer is read.
    for _ in range(10):
        endless = Endless()
        started = time.monotonic()
        result = await Clamd(address, timeout=5).scan(endless.stream())
        assert (result.status, result.detail) == (ScanStatus.FAILED, "INSTREAM size limit exceeded")
        assert time.monotonic() - started < 3
        assert endless.closed and endless.pulled * endless.chunk < 16 * SMALL_LIMIT


async def test_one_chunk_above_the_limit_fails(small_clamd: EmbeddedClamd) -> None:
    async def one() -> AsyncIterator[bytes]:
        yield b"x" * (3 * SMALL_LIMIT)

    result = await client(small_clamd).scan(one())
    assert (result.status, result.detail) == (ScanStatus.FAILED, "INSTREAM size limit exceeded")


async def test_a_file_clamd_cannot_scan_whole_is_failed_not_clean(small_clamd: EmbeddedClamd) -> None:
    # 5 MiB of zeros deflate to a few KiB: the stream is small, the member is past what clamd scans
    # (4 MiB: 4 x StreamMaxLength). The test string at its end is never reached, so this is no "clean".
    bomb = zip_with("big.bin", b"\0" * (5 * MiB) + EICAR)
    assert len(bomb) < SMALL_LIMIT
    result = await client(small_clamd).scan(chunked(bomb))
    assert result == ScanResult(
        ScanStatus.FAILED, "the file exceeds the scanner's limits (Heuristics.Limits.Exceeded.MaxScanSize)", len(bomb)
    )
    # Below the limits, the same archive is scanned whole.
    found = await client(small_clamd).scan(chunked(zip_with("big.bin", b"\0" * (3 * MiB) + EICAR)))
    assert found.detail == EICAR_FOUND


async def test_many_scans_at_once(clamd: EmbeddedClamd) -> None:
    scanner = client(clamd, scan_timeout=60)
    clean, infected = files.pdf(), pdf_with(EICAR)
    samples = [infected if i % 3 == 0 else clean for i in range(20)]
    results = await asyncio.gather(*(scanner.scan(chunked(data, 4096)) for data in samples))
    expected = [ScanStatus.INFECTED if data is infected else ScanStatus.CLEAN for data in samples]
    assert [r.status for r in results] == expected
    assert {r.detail for r in results if r.status is ScanStatus.INFECTED} == {EICAR_FOUND}


async def test_the_unix_socket_address_form(clamd: EmbeddedClamd) -> None:
    settings = Settings.from_env({"CLAMD_ADDRESS": str(clamd.unix_socket)})
    assert settings.clamd_address == clamd.unix_socket
    scanner = Clamd(settings.clamd_address, timeout=settings.clamd_timeout)
    await scanner.ping()
    assert (await scanner.scan(chunked(pdf_with(EICAR)))).detail == EICAR_FOUND


async def test_clamd_stopped_is_unreachable_and_scans_again_once_started(tmp_path: Path) -> None:
    port = free_port()
    server = started_clamd(tmp_path / "a", port=port)
    scanner = Clamd(("127.0.0.1", port), timeout=2)
    try:
        assert (await scanner.scan(chunked(files.pdf()))).clean
        server.stop()
        for attempt in (scanner.ping(), scanner.scan(chunked(files.pdf()))):
            with pytest.raises(ScannerUnavailable, match=rf"clamd at 127.0.0.1:{port} cannot be reached") as info:
                await attempt
            assert info.value.code == "SCANNER_UNAVAILABLE"
        server = started_clamd(tmp_path / "b", port=port)
        assert (await scanner.scan(chunked(files.pdf()))).clean
        assert (await scanner.scan(chunked(pdf_with(EICAR)))).detail == EICAR_FOUND
    finally:
        server.stop()


async def test_nothing_at_the_address_is_unreachable(tmp_path: Path) -> None:
    with pytest.raises(ScannerUnavailable, match="cannot be reached"):
        await Clamd(("127.0.0.1", free_port()), timeout=2).ping()
    stream = Endless()
    with pytest.raises(ScannerUnavailable, match=r"clamd at /.*missing\.sock cannot be reached"):
        await Clamd(tmp_path / "missing.sock", timeout=2).scan(stream.stream())
    assert stream.pulled == 0  # nothing read from storage for a scanner that is not there
    with pytest.raises(ScannerUnavailable, match="cannot be reached"):
        await Clamd(("no-such-host.invalid", 3310), timeout=2).ping()


async def test_an_error_of_the_stream_itself_propagates(clamd: EmbeddedClamd) -> None:
    async def broken() -> AsyncIterator[bytes]:
        yield b"%PDF-1.4\n"
        raise ConnectionResetError("storage went away")

    with pytest.raises(ConnectionResetError, match="storage went away"):
        await client(clamd).scan(broken())
    await client(clamd).ping()


# -- a clamd that misbehaves: stand-ins on a loopback port -------------------------------------------


Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@asynccontextmanager
async def stand_in(handler: Handler) -> AsyncIterator[tuple[str, int]]:
    """A loopback server running `handler` per connection, every connection closed on exit."""
    writers: list[asyncio.StreamWriter] = []

    async def run(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        await handler(reader, writer)

    server = await asyncio.start_server(run, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[:2]
    finally:
        server.close()
        for writer in writers:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
        await server.wait_closed()


async def test_a_scanner_that_stops_reading_times_out() -> None:
    async def never_reads(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.Event().wait()

    async with stand_in(never_reads) as address:
        endless = Endless()
        started = time.monotonic()
        with pytest.raises(ScannerUnavailable, match=r"stopped reading: nothing sent for 0\.5 s"):
            await Clamd(address, timeout=0.5).scan(endless.stream())
        assert time.monotonic() - started < 5 and endless.closed


async def test_a_scanner_that_never_answers_times_out() -> None:
    async def swallows(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await reader.read(65536):
            pass

    async with stand_in(swallows) as address:
        with pytest.raises(ScannerUnavailable, match=r"did not answer within 0\.5 s"):
            await Clamd(address, timeout=0.5, scan_timeout=0.5).scan(chunked(files.pdf()))
        with pytest.raises(ScannerUnavailable, match=r"did not answer within 0\.5 s"):
            await Clamd(address, timeout=0.5).ping()


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (b"", "closed the connection without an answer"),
        (b"HTTP/1.1 400 Bad Request\r\n\r\n", "answered INSTREAM with 'HTTP/1.1 400 Bad Request'"),
        (b"stream: Can't create temporary file. ERROR\0", "cannot scan now: Can't create temporary file"),
        (b"x" * 10_000, "answered INSTREAM with 'xxx"),
    ],
)
async def test_a_scanner_that_answers_nonsense_or_is_in_trouble_is_unavailable(answer: bytes, message: str) -> None:
    async def answers(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\0\0\0\0")
        writer.write(answer)
        await writer.drain()
        writer.close()

    async with stand_in(answers) as address:
        with pytest.raises(ScannerUnavailable, match=message):
            await Clamd(address, timeout=2).scan(chunked(b"hello"))


# -- the settings ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("127.0.0.1:3310", ("127.0.0.1", 3310)),
        (" clamav.internal:3310 ", ("clamav.internal", 3310)),
        ("[::1]:3310", ("::1", 3310)),
        ("/run/clamav/clamd.ctl", Path("/run/clamav/clamd.ctl")),
        ("", None),
    ],
)
def test_clamd_address_forms(raw: str, expected: object) -> None:
    assert Settings.from_env({"CLAMD_ADDRESS": raw}).clamd_address == expected


@pytest.mark.parametrize("raw", ["localhost", "clamd:0", "clamd:70000", ":3310", "clamd:port", "run/clamd.ctl"])
def test_a_bad_clamd_address_names_the_setting(raw: str) -> None:
    with pytest.raises(SettingsError, match=r"CLAMD_ADDRESS=.* must be host:port .* or an absolute unix socket path"):
        Settings.from_env({"CLAMD_ADDRESS": raw})


def test_scanning_settings_are_described() -> None:
    rows = {r.env: r for r in describe() if r.group == "Scanning"}
    assert set(rows) == {"CLAMD_ADDRESS", "CLAMD_TIMEOUT", "CLAMD_SCAN_TIMEOUT"}
    assert (rows["CLAMD_ADDRESS"].default, rows["CLAMD_TIMEOUT"].default) == ("", "10")
    with pytest.raises(SettingsError, match="CLAMD_TIMEOUT=0 is out of range"):
        Settings.from_env({"CLAMD_TIMEOUT": "0"})


def test_the_same_verdicts_under_uvloop(clamd: EmbeddedClamd, small_clamd: EmbeddedClamd) -> None:
    """`make run` runs the worker in uvicorn's uvloop, whose socket calls fail differently."""
    assert small_clamd.unix_socket is not None
    addresses: list[SocketAddress] = [small_clamd.address, small_clamd.unix_socket]

    async def scenario() -> list[ScanResult]:
        with pytest.raises(ScannerUnavailable, match="cannot be reached"):
            await Clamd(("127.0.0.1", free_port()), timeout=2).ping()
        over = [await Clamd(address, timeout=5).scan(Endless().stream()) for address in addresses]
        return [await client(clamd).scan(chunked(eicar_in_a_zip())), *over]

    infected, *over = uvloop.run(scenario())
    assert infected.detail == EICAR_FOUND
    assert {(r.status, r.detail) for r in over} == {(ScanStatus.FAILED, "INSTREAM size limit exceeded")}
