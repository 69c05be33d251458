"""The front of the embedded storage: a streaming HTTP proxy to SeaweedFS's S3 endpoint that answers a
browser's form POST the way S3 does.

SeaweedFS stores a POSTed object and answers 201 with the `ETag` header and a `<PostResponse>`, but with
no `Location` header and an empty `<Location>`. S3 sends the object's URL in both, and browser clients
read the header: Uppy's AwsS3 plugin (5.x) logs an error without it. This proxy adds it to a successful
form POST to a bucket; every other request and answer passes through untouched (the Host header too,
so SigV4 signatures still match). Browsers read it through the bucket's CORS rules, which expose
`ETag` and `Location`.

Run as `python -m app.embedded.s3_front --host H --port P --upstream http://127.0.0.1:Q`
(what app/embedded/seaweedfs.py starts).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import re
import signal
from collections.abc import AsyncIterator
from html import unescape
from urllib.parse import quote

import aiohttp
from aiohttp import web
from multidict import CIMultiDict
from yarl import URL

# Headers of one connection, never forwarded (RFC 9110, 7.6.1).
HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade"}
)
_KEY = re.compile(rb"<Key>(.*?)</Key>", re.S)
_CHUNK = 256 * 1024


def location(request: web.Request, status: int, body: bytes) -> str | None:
    """S3's Location of a stored form POST (path-style: /<bucket>), or None for any other answer."""
    bucket = request.path.strip("/")
    if status != 201 or not bucket or "/" in bucket:
        return None
    found = _KEY.search(body)
    if found is None:
        return None
    key = unescape(found[1].decode("utf-8", "replace"))
    return f"{request.scheme}://{request.host}/{bucket}/{quote(key, safe='/~')}"


def is_form_post(request: web.Request) -> bool:
    return request.method == "POST" and request.content_type == "multipart/form-data"


class Front:
    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.session: aiohttp.ClientSession | None = None

    async def start(self, app: web.Application) -> AsyncIterator[None]:
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=100),
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=5, sock_read=600),
            auto_decompress=False,
            skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"),
        )
        yield
        await self.session.close()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        assert self.session is not None
        headers = CIMultiDict((k, v) for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP)
        try:
            async with self.session.request(
                request.method,
                URL(self.upstream + request.raw_path, encoded=True),
                headers=headers,
                data=request.content if request.body_exists else None,
                allow_redirects=False,
            ) as upstream:
                return await self._answer(request, upstream)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            body = f"<Error><Code>ServiceUnavailable</Code><Message>storage is unreachable: {exc}</Message></Error>"
            return web.Response(status=503, text=body, content_type="application/xml")

    async def _answer(self, request: web.Request, upstream: aiohttp.ClientResponse) -> web.StreamResponse:
        headers = CIMultiDict((k, v) for k, v in upstream.headers.items() if k.lower() not in HOP_BY_HOP)
        if is_form_post(request) and upstream.status == 201:
            body = await upstream.read()
            where = location(request, upstream.status, body)
            if where is not None and "Location" not in headers:
                headers["Location"] = where
            return web.Response(status=upstream.status, reason=upstream.reason, body=body, headers=headers)
        response = web.StreamResponse(status=upstream.status, reason=upstream.reason, headers=headers)
        await response.prepare(request)
        if request.method != "HEAD":
            async for chunk in upstream.content.iter_chunked(_CHUNK):
                await response.write(chunk)
        await response.write_eof()
        return response


def app(upstream: str) -> web.Application:
    front = Front(upstream)
    application = web.Application(client_max_size=0)
    application.cleanup_ctx.append(front.start)
    application.router.add_route("*", "/{path:.*}", front.handle)
    return application


async def serve(host: str, port: int, upstream: str) -> None:
    runner = web.AppRunner(app(upstream), access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port, reuse_address=True)
    await site.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        with contextlib.suppress(Exception):
            await runner.cleanup()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True)
    args = parser.parse_args(argv)
    asyncio.run(serve(args.host, args.port, args.upstream))


if __name__ == "__main__":
    main()
