"""An asyncio client of clamd, ClamAV's daemon: PING, VERSION, and INSTREAM scans of a stream of chunks.

The protocol (clamd(8), clamd/server-th.c): a command prefixed with `z` ends in NUL, and so does its
answer. INSTREAM is followed by chunks, each a 4-byte big-endian length and that many bytes, ended by
a zero length; clamd writes them to a temporary file, scans it and answers `stream: OK`,
`stream: <signature> FOUND` or `stream: <reason> ERROR`. Once the stream is longer than its
StreamMaxLength, clamd answers `INSTREAM size limit exceeded. ERROR` at once and closes the connection,
usually while we are still sending: a send that fails is followed by reading that answer.

One connection per command, so a restarted clamd is simply used again. A file is never held whole: one
chunk at a time is sent, and clamd reads as fast as it writes its temporary file.
"""

from __future__ import annotations

import asyncio
import os
import socket
import struct
from collections.abc import AsyncIterable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from app.errors import ScannerUnavailable
from app.settings import SocketAddress

# Bounded writes keep the per-write timeout meaningful whatever chunk size the caller streams.
MAX_CHUNK = 1 << 20
_COPY_BELOW = 256 * 1024
_MAX_REPLY = 4096  # a longer answer is not clamd's
_END = b"\0\0\0\0"
_LIMITS_EXCEEDED = "Heuristics.Limits.Exceeded"
# clamd's answers (its own and libclamav's cl_strerror) that say clamd, not the file, is in trouble:
# the scan can succeed later, so they are ScannerUnavailable rather than a failed scan.
_SCANNER_TROUBLE = frozenset(
    {
        "Error writing to temporary file",
        "Error processing command",
        "Can't create new file",
        "Can't write to file",
        "Can't create temporary file",
        "Can't create temporary directory",
        "Can't open file or directory",
        "Can't read file",
        "Can't get file status",
        "Can't allocate memory",
        "Can't map file into memory",
        "Mutex lock failed",
        "Scanner still active",
    }
)


class ScanStatus(StrEnum):
    CLEAN = "clean"
    INFECTED = "infected"
    FAILED = "failed"  # clamd answered that it cannot scan this file (too large, over its limits)


@dataclass(frozen=True)
class ScanResult:
    """clamd's verdict on one stream."""

    status: ScanStatus
    detail: str | None  # infected: the signature name; failed: clamd's reason; clean: None
    size: int  # bytes sent to clamd

    @property
    def clean(self) -> bool:
        return self.status is ScanStatus.CLEAN


def describe(address: SocketAddress) -> str:
    if isinstance(address, Path):
        return str(address)
    host, port = address
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class _Closed(Exception):
    """clamd closed the connection while we were sending."""


class Clamd:
    """clamd at `address`. `timeout` bounds connecting and each write (a clamd that stops reading is
    unreachable); `scan_timeout` bounds the wait for the verdict once the whole stream is sent."""

    def __init__(self, address: SocketAddress, *, timeout: float = 10.0, scan_timeout: float = 300.0) -> None:
        self.address = address
        self.timeout = timeout
        self.scan_timeout = scan_timeout
        self.where = f"clamd at {describe(address)}"

    async def ping(self) -> None:
        """Raises ScannerUnavailable unless clamd answers PONG."""
        answer = await self._command(b"zPING\0")
        if answer != "PONG":
            raise ScannerUnavailable(f"{self.where} answered PING with {answer[:100]!r}")

    async def version(self) -> str:
        """ClamAV's version and, when official databases are loaded, their version and date."""
        answer = await self._command(b"zVERSION\0")
        if not answer.startswith("ClamAV "):
            raise ScannerUnavailable(f"{self.where} answered VERSION with {answer[:100]!r}")
        return answer

    async def scan(self, chunks: AsyncIterable[bytes]) -> ScanResult:
        """Stream `chunks` to clamd and return its verdict; `chunks` is consumed and closed, even when
        clamd stops the stream early. Raises ScannerUnavailable when clamd cannot be reached, stops
        reading, closes without an answer, does not answer in time, or cannot scan now; errors of
        `chunks` itself propagate unchanged."""
        try:
            sock = await self._connect()
        except BaseException:
            await _close_iterator(chunks)
            raise
        size = 0
        try:
            try:
                await self._send(sock, b"zINSTREAM\0")
                async for chunk in chunks:
                    view = memoryview(chunk)
                    # An empty chunk would end the stream: clamd would scan only what came before.
                    for start in range(0, len(view), MAX_CHUNK):
                        piece = view[start : start + MAX_CHUNK]
                        if len(piece) <= _COPY_BELOW:  # one write instead of two; the copy is cheaper
                            await self._send(sock, struct.pack(">I", len(piece)) + piece)
                        else:
                            await self._send(sock, struct.pack(">I", len(piece)))
                            await self._send(sock, piece)
                        size += len(piece)
                await self._send(sock, _END)
            except _Closed as exc:
                answer = await self._answer_after_close(sock)
                if not answer:
                    raise ScannerUnavailable(
                        f"{self.where} closed the connection after {size} bytes without an answer ({exc.__cause__})"
                    ) from None
                return self._verdict(answer, size)
            finally:
                await _close_iterator(chunks)
            return self._verdict(await self._answer(sock, self.scan_timeout), size)
        finally:
            sock.close()

    # -- verdicts ----------------------------------------------------------------------------------
    def _verdict(self, answer: str, size: int) -> ScanResult:
        text = answer.removeprefix("stream: ")
        if text == "OK":
            return ScanResult(ScanStatus.CLEAN, None, size)
        if text.endswith(" FOUND"):
            name = text.removesuffix(" FOUND").strip()
            if name.startswith(_LIMITS_EXCEEDED):
                # AlertExceedsMax: clamd did not scan all of it, which is not a finding of malware.
                return ScanResult(ScanStatus.FAILED, f"the file exceeds the scanner's limits ({name})", size)
            return ScanResult(ScanStatus.INFECTED, name, size)
        if text.endswith(" ERROR"):
            reason = text.removesuffix(" ERROR").strip().rstrip(".")
            if reason in _SCANNER_TROUBLE:
                raise ScannerUnavailable(f"{self.where} cannot scan now: {reason}")
            return ScanResult(ScanStatus.FAILED, reason, size)
        raise ScannerUnavailable(f"{self.where} answered INSTREAM with {answer[:100]!r}")

    # -- transport ---------------------------------------------------------------------------------
    async def _command(self, command: bytes) -> str:
        sock = await self._connect()
        try:
            try:
                await self._send(sock, command)
            except _Closed as exc:
                raise ScannerUnavailable(f"{self.where} closed the connection ({exc.__cause__})") from None
            return await self._answer(sock, self.timeout)
        finally:
            sock.close()

    async def _connect(self) -> socket.socket:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.timeout):
                targets = await _targets(self.address)
                error: OSError = OSError(f"{describe(self.address)} does not resolve")
                for family, sockaddr in targets:
                    sock = socket.socket(family, socket.SOCK_STREAM)
                    sock.setblocking(False)
                    try:
                        await loop.sock_connect(sock, sockaddr)
                    except OSError as exc:
                        sock.close()
                        error = exc
                        continue
                    except BaseException:
                        sock.close()
                        raise
                    return sock
                raise error
        except TimeoutError:
            raise ScannerUnavailable(f"{self.where} cannot be reached: no connection in {self.timeout:g} s") from None
        except OSError as exc:
            # asyncio's strerror repeats the address ("Connect call failed ('127.0.0.1', 3310)"): the
            # errno's own words say it once, after `where`.
            reason = os.strerror(exc.errno) if exc.errno else (exc.strerror or str(exc))
            raise ScannerUnavailable(f"{self.where} cannot be reached: {reason}") from None

    async def _send(self, sock: socket.socket, data: bytes | memoryview) -> None:
        try:
            async with asyncio.timeout(self.timeout):
                await asyncio.get_running_loop().sock_sendall(sock, data)
        except TimeoutError:
            raise ScannerUnavailable(f"{self.where} stopped reading: nothing sent for {self.timeout:g} s") from None
        except OSError as exc:
            raise _Closed() from exc

    async def _answer(self, sock: socket.socket, within: float) -> str:
        try:
            answer = await self._read_answer(sock, within)
        except TimeoutError:
            raise ScannerUnavailable(f"{self.where} did not answer within {within:g} s") from None
        except OSError as exc:
            raise ScannerUnavailable(f"{self.where} closed the connection ({exc.strerror or exc})") from None
        if not answer:
            raise ScannerUnavailable(f"{self.where} closed the connection without an answer")
        return answer

    async def _answer_after_close(self, sock: socket.socket) -> str:
        """What clamd answered before it closed (it answers, then closes, as it refuses a stream)."""
        try:
            return await self._read_answer(sock, self.timeout)
        except (TimeoutError, OSError):
            return ""

    async def _read_answer(self, sock: socket.socket, within: float) -> str:
        loop = asyncio.get_running_loop()
        received = bytearray()
        async with asyncio.timeout(within):
            while b"\0" not in received and len(received) <= _MAX_REPLY:
                try:
                    data = await loop.sock_recv(sock, _MAX_REPLY)
                except OSError:
                    if received:  # a reset after the answer (clamd closed with our data unread)
                        break
                    raise
                if not data:
                    break
                received += data
        # Answers end in NUL; a few of clamd's (COMMAND READ TIMED OUT) in a newline.
        return received.split(b"\0", 1)[0].decode("utf-8", "replace").strip()


Target = tuple[socket.AddressFamily, tuple[Any, ...] | str]


async def _targets(address: SocketAddress) -> list[Target]:
    """Where to connect, in order: the socket path, or every address the host name resolves to."""
    if isinstance(address, Path):
        return [(socket.AF_UNIX, str(address))]
    infos = await asyncio.get_running_loop().getaddrinfo(*address, type=socket.SOCK_STREAM)
    return [(family, sockaddr) for family, _, _, _, sockaddr in infos]


async def _close_iterator(chunks: AsyncIterable[bytes]) -> None:
    aclose = getattr(chunks, "aclose", None)
    if aclose is not None:
        await aclose()
