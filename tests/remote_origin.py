"""A small web origin of our own for `value_upload.remote_url` (aiohttp's server on 127.0.0.1), over
HTTP or HTTPS with a self-signed certificate made here. It records every request it gets and how
many bytes its endless answer could send before the client went away."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

CHUNK = b"x" * 65536


class Origin:
    def __init__(self) -> None:
        self.files: dict[str, tuple[bytes, str]] = {}  # name -> (body, the Content-Type it claims)
        self.requests: list[str] = []
        self.streamed = 0  # bytes /endless wrote before the client went away
        self.stream_ended = asyncio.Event()
        self.release = asyncio.Event()  # /slow answers once this is set (at teardown)
        self.base = ""

    def url(self, path: str) -> str:
        return self.base + path

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/files/{name}", self.file)
        app.router.add_get("/redirect", self.redirect)
        app.router.add_get("/endless", self.endless)
        app.router.add_get("/declared-huge", self.declared_huge)
        app.router.add_get("/slow", self.slow)
        app.router.add_get("/gone", self.gone)
        app.middlewares.append(self.record)
        return app

    @web.middleware
    async def record(self, request: web.Request, handler: object) -> web.StreamResponse:
        self.requests.append(request.path_qs)
        return await handler(request)  # type: ignore[operator,no-any-return]

    async def file(self, request: web.Request) -> web.Response:
        body, claimed = self.files[request.match_info["name"]]
        return web.Response(body=body, headers={"Content-Type": claimed})

    async def redirect(self, request: web.Request) -> web.Response:
        raise web.HTTPFound(request.query["to"])

    async def endless(self, request: web.Request) -> web.StreamResponse:
        """64 MiB, chunked (no Content-Length): only reading tells the client how big it is."""
        response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
        await response.prepare(request)
        try:
            for _ in range(1024):
                await response.write(CHUNK)
                self.streamed += len(CHUNK)
        finally:
            self.stream_ended.set()
        return response

    async def declared_huge(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Length": str(10 * 1024 * 1024)})
        await response.prepare(request)
        try:
            for _ in range(160):
                await response.write(CHUNK)
                self.streamed += len(CHUNK)
        finally:
            self.stream_ended.set()
        return response

    async def slow(self, request: web.Request) -> web.Response:
        await self.release.wait()
        return web.Response(body=b"too late")

    async def gone(self, request: web.Request) -> web.Response:
        raise web.HTTPNotFound(text="no such file")


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and localhost, and its key (PEM files in `folder`)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "value_upload test origin")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "origin.pem", folder / "origin.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_file, key_file


@asynccontextmanager
async def serving(origin: Origin, tls: tuple[Path, Path] | None = None) -> AsyncIterator[Origin]:
    context = None
    if tls is not None:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(*tls)
    runner = web.AppRunner(origin.app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    port = runner.addresses[0][1]
    origin.base = f"{'https' if tls else 'http'}://127.0.0.1:{port}"
    try:
        yield origin
    finally:
        origin.release.set()
        await runner.cleanup()
