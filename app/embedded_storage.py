"""The embedded storage of `make run`: moto's server (S3 and SQS over HTTP), answering a browser's form
POST upload the way S3 does.

moto stores a POSTed object but answers with no `ETag`, no `Location` and no
`Access-Control-Expose-Headers`. S3 sends `ETag` and `Location` and exposes what the bucket's CORS rule
lists, and browser clients rely on that: Uppy's AwsS3 plugin (5.x) waits for a readable `ETag` and
never finishes the upload without one. This WSGI layer adds the three headers to a successful form POST
to a bucket (path-style, as the embedded storage is addressed); every other request passes through
untouched.

Run as `python -m app.embedded_storage -H HOST -p PORT` (what app/run.py starts).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import signal
import sys
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import quote

# Response headers the bucket's CORS rules let browsers read (Storage.ensure_bucket sets the rules):
# ETag for multipart parts and Uppy, Location for form POSTs.
CORS_EXPOSE_HEADERS = ("ETag", "Location")

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def _form_upload(environ: dict[str, Any]) -> tuple[str, str, str] | None:
    """(bucket, key, ETag) of a multipart form POST to `/<bucket>`, read without consuming the body;
    None for any other request."""
    if environ.get("REQUEST_METHOD") != "POST":
        return None
    if not str(environ.get("CONTENT_TYPE", "")).lower().startswith("multipart/form-data"):
        return None
    bucket = str(environ.get("PATH_INFO", "")).strip("/")
    length = str(environ.get("CONTENT_LENGTH") or "")
    if not bucket or "/" in bucket or not length.isdigit():
        return None
    from werkzeug.formparser import parse_form_data

    body = environ["wsgi.input"].read(int(length))
    environ["wsgi.input"] = io.BytesIO(body)  # moto reads it again
    _, form, uploaded = parse_form_data({**environ, "wsgi.input": io.BytesIO(body)})
    file = uploaded.get("file")
    key = form.get("key")
    if file is None or not key:
        return None
    key = key.replace("${filename}", file.filename or "")
    return bucket, key, '"' + hashlib.md5(file.read(), usedforsecurity=False).hexdigest() + '"'


def s3_post_responses(app: WSGIApp) -> WSGIApp:
    """Wrap moto's WSGI app so a stored form POST answers with S3's ETag, Location and exposed headers."""

    def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        upload = _form_upload(environ)
        if upload is None:
            return app(environ, start_response)
        bucket, key, etag = upload
        host = environ.get("HTTP_HOST") or f"{environ['SERVER_NAME']}:{environ['SERVER_PORT']}"
        location = f"{environ.get('wsgi.url_scheme', 'http')}://{host}/{bucket}/{quote(key, safe='/')}"

        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            if status.startswith("2"):
                present = {name.lower() for name, _ in headers}
                headers = [*headers]
                if "etag" not in present:
                    headers.append(("ETag", etag))
                if "location" not in present:
                    headers.append(("Location", location))
                if "access-control-allow-origin" in present and "access-control-expose-headers" not in present:
                    headers.append(("Access-Control-Expose-Headers", ", ".join(CORS_EXPOSE_HEADERS)))
            return start_response(status, headers, exc_info)

        return app(environ, start)

    return wrapped


def main(argv: list[str] | None = None) -> None:
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
    from werkzeug.serving import run_simple

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=9000)
    args = parser.parse_args(argv)
    os.environ.setdefault("MOTO_PORT", str(args.port))  # as `python -m moto.server` does
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    app = s3_post_responses(DomainDispatcherApplication(create_backend_app))
    run_simple(args.host, args.port, app, threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
