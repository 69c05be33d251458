"""Logging: one line per event, JSON or text (LOG_FORMAT), each carrying the id of the request it
belongs to. The id lives in a contextvar, so every logger in the request's task sees it without
being passed anything."""

from __future__ import annotations

import json
import logging
import re
import sys
import uuid
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import TextIO

request_id: ContextVar[str | None] = ContextVar("request_id", default=None)

# Client-supplied ids are honoured only when they cannot forge log lines or bloat them.
_SANE_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")
LOG_FORMATS = ("auto", "json", "text")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s]: %(message)s"
# Attributes every LogRecord has; anything else was passed with `extra=` and belongs in the JSON.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "request_id"}


def accept_request_id(raw: str | None) -> str:
    """The caller's X-Request-ID when sane, otherwise a fresh one."""
    if raw and _SANE_ID.fullmatch(raw):
        return raw
    return uuid.uuid4().hex


class RequestIdFilter(logging.Filter):
    """Stamps `record.request_id` ("-" outside a request) so both formats can print it."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get() or "-"
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None) or request_id.get(),
        }
        for name, value in vars(record).items():
            if name not in _STANDARD and not name.startswith("_"):
                entry[name] = value
        if record.exc_info:
            entry["exc_info"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


def make_handler(fmt: str, stream: TextIO | None = None) -> logging.Handler:
    """`auto`: lines for a person when the stream is a terminal, JSON for a log collector otherwise."""
    if fmt not in LOG_FORMATS:
        raise ValueError(f"LOG_FORMAT={fmt!r} must be auto, json or text")
    stream = stream if stream is not None else sys.stderr
    if fmt == "auto":
        fmt = "text" if stream.isatty() else "json"
    handler: logging.Handler = logging.StreamHandler(stream)
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    return handler


def configure_logging(fmt: str = "auto", level: str = "INFO") -> None:
    """Replace the root handlers with one of ours (uvicorn's loggers propagate to it)."""
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(make_handler(fmt.strip().lower()))
    root.setLevel(level.upper())
    # The Azure SDK logs every request and response at INFO (the storage adapter logs what failed):
    # shown with LOG_LEVEL=debug only.
    sdk = logging.getLogger("azure.core.pipeline.policies.http_logging_policy")
    sdk.setLevel(logging.NOTSET if root.level <= logging.DEBUG else logging.WARNING)
