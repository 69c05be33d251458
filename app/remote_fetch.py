"""Fetching `value_upload.remote_url` (an adapter: it talks to the outside world over aiohttp).

Only origins the allowlist names are fetched (app/remote_hosts.py), and a redirect is followed only
to another such origin, each hop checked again. Names are resolved by a resolver that refuses
non-public addresses, and the connection goes to the very addresses it checked, so a name that
changes its answer between a check and the connection (DNS rebinding) gains nothing. No proxy from
the environment is used and no credentials or cookies are sent. The whole fetch, redirects
included, has one time limit; the body is read in chunks and the fetch stops as soon as it passes
the size limit (or at once when Content-Length says it would), so a large or endless answer costs at
most the limit. What the origin says the file's type is plays no part: the save takes it from the bytes.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Callable
from urllib.parse import unquote

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver
from yarl import URL

from app.errors import AppError, BadUserInput, RemoteFetchFailed, RemoteUrlForbidden, UploadTooLarge
from app.remote_hosts import MAX_URL_LENGTH, Fetched, Origin, address_problem, admitted, origins
from app.settings import Settings

MAX_REDIRECTS = 5
CHUNK = 64 * 1024
REDIRECTS = frozenset({301, 302, 303, 307, 308})
HEADERS = {"User-Agent": "s3-direct-uploads value_upload", "Accept": "*/*", "Accept-Encoding": "identity"}


class _PublicOnly(AbstractResolver):
    """Resolves with `inner`, then refuses the name if any address it gave is not public."""

    def __init__(self, inner: AbstractResolver) -> None:
        self.inner = inner

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self.inner.resolve(host, port, family)
        for result in results:
            problem = address_problem(result["host"])
            if problem is not None:
                # Not an OSError: aiohttp lets it through as it is instead of as a DNS failure.
                raise RemoteUrlForbidden(
                    f"remote_url's host {host[:200]} resolves to a {problem} address; remote_url reaches public "
                    "addresses only (an address this server should reach must be listed as such in "
                    "VALUE_UPLOAD_REMOTE_HOSTS)"
                )
        return results

    async def close(self) -> None:
        await self.inner.close()


class RemoteFetcher:
    def __init__(
        self,
        allowed: tuple[Origin, ...],
        *,
        timeout: float,
        max_bytes: int,
        resolver: Callable[[], AbstractResolver] = ThreadedResolver,
    ) -> None:
        self.allowed = allowed
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.resolver = resolver
        self._ssl: ssl.SSLContext | None = None

    @property
    def ssl(self) -> ssl.SSLContext:
        """System CAs (OpenSSL's defaults, SSL_CERT_FILE included), host names checked; made at the
        first fetch (loading the CAs takes tens of milliseconds, and most servers never fetch)."""
        if self._ssl is None:
            self._ssl = ssl.create_default_context()
        return self._ssl

    @classmethod
    def of(cls, settings: Settings) -> RemoteFetcher:
        return cls(
            origins(settings.value_upload_remote_hosts),
            timeout=settings.value_upload_remote_timeout,
            max_bytes=settings.value_upload_remote_max_bytes,
        )

    def check(self, url: str) -> URL:
        """The URL, if the allowlist admits it (before any network access)."""
        if len(url) > MAX_URL_LENGTH:
            raise BadUserInput(f"remote_url is longer than {MAX_URL_LENGTH} characters")
        try:
            parsed = URL(url.strip())
        except (ValueError, TypeError):
            raise BadUserInput("remote_url is not a URL") from None
        if parsed.user is not None or parsed.password is not None:
            raise BadUserInput("remote_url may not carry credentials (user:password@)")
        try:
            admitted(self.allowed, parsed.scheme, parsed.raw_host, parsed.port)
        except UnicodeError:
            raise BadUserInput("remote_url's host is not a valid host name") from None
        return parsed.with_fragment(None)

    async def fetch(self, url: str, limit: int) -> Fetched:
        """The bytes at `url`, at most `limit` (and VALUE_UPLOAD_REMOTE_MAX_BYTES) of them."""
        target = self.check(url)
        limit = min(limit, self.max_bytes)
        connector = aiohttp.TCPConnector(resolver=_PublicOnly(self.resolver()), use_dns_cache=False, ssl=self.ssl)
        timeout = aiohttp.ClientTimeout(total=self.timeout, sock_connect=self.timeout, sock_read=self.timeout)
        try:
            async with (
                aiohttp.ClientSession(
                    connector=connector,
                    timeout=timeout,
                    trust_env=False,
                    headers=HEADERS,
                    cookie_jar=aiohttp.DummyCookieJar(),
                ) as session,
                asyncio.timeout(self.timeout),
            ):
                for _ in range(MAX_REDIRECTS + 1):
                    async with session.get(target, allow_redirects=False) as response:
                        if response.status in REDIRECTS:
                            target = self._next(target, response)
                            continue
                        if response.status != 200:
                            raise RemoteFetchFailed(
                                f"remote_url answered HTTP {response.status} {response.reason or ''}".rstrip()
                                + "; nothing was saved"
                            )
                        data = await self._read(response, limit)
                        return Fetched(data, unquote(target.raw_path.rsplit("/", 1)[-1]) or None)
                raise RemoteFetchFailed(f"remote_url redirected more than {MAX_REDIRECTS} times")
        except AppError:
            raise
        except TimeoutError:
            raise RemoteFetchFailed(f"remote_url did not answer within {self.timeout:g} s; nothing was saved") from None
        except aiohttp.ClientSSLError as exc:
            raise RemoteFetchFailed(f"remote_url's TLS connection failed: {_reason(exc)}") from None
        except (aiohttp.ClientError, OSError) as exc:
            raise RemoteFetchFailed(f"remote_url could not be fetched: {_reason(exc)}") from None

    def _next(self, current: URL, response: aiohttp.ClientResponse) -> URL:
        location = response.headers.get("Location")
        if not location:
            raise RemoteFetchFailed(f"remote_url answered HTTP {response.status} without a Location to follow")
        try:
            following = current.join(URL(location))
        except (ValueError, TypeError):
            raise RemoteFetchFailed("remote_url redirected to something that is not a URL") from None
        try:
            return self.check(str(following))
        except RemoteUrlForbidden as exc:
            raise RemoteUrlForbidden(f"remote_url redirected elsewhere: {exc.message}") from None
        except BadUserInput as exc:
            raise RemoteFetchFailed(f"remote_url redirected to an unusable URL: {exc.message}") from None

    @staticmethod
    async def _read(response: aiohttp.ClientResponse, limit: int) -> bytes:
        too_large = UploadTooLarge(
            f"the file at remote_url is larger than {limit} bytes, the most this property (or the server) takes"
        )
        if response.content_length is not None and response.content_length > limit:
            raise too_large
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.content.iter_chunked(CHUNK):
            size += len(chunk)
            if size > limit:
                raise too_large  # leaving the response closes the connection: nothing more is read
            chunks.append(chunk)
        return b"".join(chunks)


def _reason(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text[:300]
