"""One Settings object, read from the environment once; a bad value fails loudly with its name.

Every setting is declared once, below, with its variable, default, parser and a one-line description:
`Settings.from_env` reads them, and the settings table of the docs is generated from the same
declarations (`describe()`), so the two cannot drift. Nothing else in the app reads `os.environ`.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import os
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import MISSING, dataclass, field, fields, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names it."""


class Secret:
    """A string that never prints: repr/str show a mask, `.value` gives the real thing."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    @property
    def value(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')" if self._value else "Secret('')"

    __str__ = __repr__

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


# -- parsers: the raw, non-empty value of one variable -> the setting's value ----------------------
# A parser raises SettingsError with the whole message, naming the variable.
Parser = Callable[[str, str], Any]


def integer(lo: int, hi: int) -> Parser:
    def parse(name: str, raw: str) -> int:
        try:
            value = int(raw)
        except ValueError:
            raise SettingsError(f"{name}={raw!r} is not an integer") from None
        if not lo <= value <= hi:
            raise SettingsError(f"{name}={value} is out of range {lo}..{hi}")
        return value

    return parse


def seconds(lo: int, hi: int) -> Parser:
    as_int = integer(lo, hi)
    return lambda name, raw: timedelta(seconds=as_int(name, raw))


def boolean(name: str, raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise SettingsError(f"{name}={raw!r} is not a boolean (use true or false)")


def text(name: str, raw: str) -> str | None:
    return raw.strip() or None


def http_url(name: str, raw: str) -> str | None:
    raw = raw.strip()
    if not raw:
        return None
    if not raw.startswith(("http://", "https://")):
        raise SettingsError(f"{name}={raw!r} must start with http:// or https://")
    return raw.rstrip("/")


def choice(*allowed: str) -> Parser:
    def parse(name: str, raw: str) -> str:
        value = raw.strip().lower()
        if value not in allowed:
            raise SettingsError(f"{name}={raw!r} must be {', '.join(allowed[:-1])} or {allowed[-1]}")
        return value

    return parse


def secret(name: str, raw: str) -> Secret:
    return Secret(raw.strip())


def origins(name: str, raw: str) -> tuple[str, ...]:
    return tuple(o.strip().rstrip("/") for o in raw.split(",") if o.strip())


def database_url(name: str, raw: str) -> str:
    raw = raw.strip()
    if not raw.startswith(("sqlite://", "postgres://", "postgresql://", "asyncpg://")):
        raise SettingsError(f"{name} must be sqlite://… or postgres://…, got {raw.split(':')[0]!r}://…")
    return raw


def directory(name: str, raw: str) -> Path:
    path = Path(raw)
    if not path.is_dir():
        raise SettingsError(f"{name}={raw!r} is not a directory")
    return path


# clamd's address: (host, port) over TCP, or the path of a unix socket.
SocketAddress = tuple[str, int] | Path


def socket_address(name: str, raw: str) -> SocketAddress | None:
    value = raw.strip()
    if not value:
        return None
    if value.startswith("/"):
        return Path(value)
    host, sep, port = value.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")  # [::1]:3310
    if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise SettingsError(f"{name}={raw!r} must be host:port (e.g. 127.0.0.1:3310) or an absolute unix socket path")
    return host, int(port)


def directory_to_be(name: str, raw: str) -> Path:
    """A folder that may not exist yet (it is created when needed), but is not a file."""
    path = Path(raw.strip())
    if path.exists() and not path.is_dir():
        raise SettingsError(f"{name}={raw!r} is a file, not a directory")
    return path


def bucket_name(name: str, raw: str) -> str:
    value = raw.strip()
    if not value:
        raise SettingsError(f"{name} is empty")
    return value


def base64_secret(name: str, raw: str) -> Secret:
    value = raw.strip()
    try:
        base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        # The message never shows the value: it is a secret.
        raise SettingsError(f"{name} is not valid base64 (copy the storage account's access key as shown)") from None
    return Secret(value)


def pattern(regex: str, rule: str) -> Parser:
    compiled = re.compile(regex)

    def parse(name: str, raw: str) -> str:
        value = raw.strip()
        if not compiled.match(value):
            raise SettingsError(f"{name}={value!r} must be {rule}")
        return value

    return parse


def pem_public_key(name: str, raw: str) -> Secret:
    # A PEM in one environment line usually carries its line breaks as literal "\n".
    return Secret(raw.strip().replace("\\n", "\n"))


def remote_origins(name: str, raw: str) -> tuple[str, ...]:
    """Comma-separated origins as `scheme://host:port` (host may be `*.domain`): a bare `host` or
    `host:port` is https (port 443 unless given); `http://host[:port]` allows plain HTTP there."""
    entries: list[str] = []
    for item in (part.strip() for part in raw.split(",")):
        if not item:
            continue
        scheme, sep, rest = item.partition("://")
        if not sep:
            scheme, rest = "https", item
        scheme = scheme.lower()
        if scheme not in ("http", "https") or not rest or any(c in "/?#@\\" or c.isspace() for c in rest):
            raise SettingsError(
                f"{name}: {item!r} must be host, host:port, *.domain or http(s)://host[:port] (no path)"
            )
        if rest.startswith("["):
            host, _, port = rest[1:].partition("]")
            port = port.removeprefix(":")
        elif rest.count(":") == 1:
            host, port = rest.split(":")
        else:
            host, port = rest, ""
        host = host.lower().rstrip(".")
        if port and (not port.isdigit() or not 1 <= int(port) <= 65535):
            raise SettingsError(f"{name}: {item!r} has a bad port")
        base = host.removeprefix("*.")
        if not (_HOST.fullmatch(base) or (base == host and _is_ip(host))):
            raise SettingsError(f"{name}: {item!r} does not name a host (use its ASCII, punycode form)")
        if base != host and ("." not in base or _is_ip(base)):
            raise SettingsError(f"{name}: {item!r}: a wildcard stands for the subdomains of a domain (*.example.com)")
        shown = f"[{host}]" if ":" in host else host
        entries.append(f"{scheme}://{shown}:{port or (443 if scheme == 'https' else 80)}")
    return tuple(dict.fromkeys(entries))


_HOST = re.compile(r"(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*")


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class Variable:
    """How one setting is read: its variable, parser, description, and the variables it falls back to."""

    env: str
    parse: Parser
    doc: str
    group: str
    fallback: tuple[str, ...] = ()
    default_doc: str | None = None  # shown instead of the default value (computed or secret defaults)
    keep_empty: bool = False  # an empty value is a value (e.g. a bucket name must not be empty)


def setting(
    env: str,
    default: Any,
    parse: Parser,
    doc: str,
    *,
    group: str,
    fallback: tuple[str, ...] = (),
    default_doc: str | None = None,
    keep_empty: bool = False,
) -> Any:
    meta = {"variable": Variable(env, parse, doc, group, fallback, default_doc, keep_empty)}
    if callable(default) and not isinstance(default, type):
        return field(default_factory=default, metadata=meta)
    return field(default=default, metadata=meta)


KEEP_ALIVE_SECONDS = 75
# Azure's naming rules for storage accounts and containers.
AZURE_ACCOUNT_NAME = r"^[a-z0-9]{3,24}$"
AZURE_CONTAINER_NAME = r"^(?=.{3,63}$)[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9]))*$"
DEFAULT_DATABASE_URL = "sqlite://var/uploads.sqlite3"


def _cpu_count() -> int:
    return os.cpu_count() or 1


def _no_secret() -> Secret:
    return Secret("")


@dataclass(frozen=True)
class Settings:
    # -- database ---------------------------------------------------------------------------------
    database_url: str = setting(
        "DATABASE_URL",
        DEFAULT_DATABASE_URL,
        database_url,
        "Where records live: `sqlite://path` (relative to the project) or `postgres://user@host/db`.",
        group="Database",
    )
    # -- storage ----------------------------------------------------------------------------------
    s3_bucket: str = setting(
        "S3_BUCKET", "uploads", bucket_name, "The bucket every file goes to.", group="Storage", keep_empty=True
    )
    s3_endpoint_url: str | None = setting(
        "S3_ENDPOINT_URL",
        None,
        http_url,
        "An S3-compatible endpoint (SeaweedFS, MinIO, R2, moto); unset: AWS S3 itself.",
        group="Storage",
    )
    s3_region: str = setting(
        "S3_REGION", "us-east-1", text, "The bucket's region.", group="Storage", fallback=("AWS_DEFAULT_REGION",)
    )
    s3_access_key_id: str | None = setting(
        "AWS_ACCESS_KEY_ID",
        None,
        text,
        "Access key for storage (and the queue); unset: botocore's credential chain (IAM role, profile).",
        group="Storage",
    )
    s3_secret_access_key: Secret = setting(
        "AWS_SECRET_ACCESS_KEY", _no_secret, secret, "Secret key for storage and the queue.", group="Storage"
    )
    s3_session_token: Secret = setting(
        "AWS_SESSION_TOKEN", _no_secret, secret, "Session token of temporary credentials.", group="Storage"
    )
    s3_addressing_style: str = setting(
        "S3_ADDRESSING_STYLE",
        "auto",
        choice("auto", "path", "virtual"),
        "`auto` (virtual-hosted on AWS, path-style on a custom endpoint), `path` or `virtual`.",
        group="Storage",
    )
    s3_public_url: str | None = setting(
        "S3_PUBLIC_URL",
        None,
        http_url,
        "The storage endpoint as browsers reach it, when it differs from S3_ENDPOINT_URL.",
        group="Storage",
    )
    s3_public_read: str = setting(
        "S3_PUBLIC_READ",
        "acl",
        choice("acl", "policy"),
        "How public files become readable: `acl` (each object's canned ACL: AWS S3 with ACLs enabled) or "
        "`policy` (objects tagged `access=public|private` and a bucket policy: SeaweedFS; see docs/storage.md).",
        group="Storage",
    )
    s3_conditional_copy: str = setting(
        "S3_CONDITIONAL_COPY",
        "storage",
        choice("storage", "head"),
        "How a promotion's copy is held to the verified ETag: `storage` (x-amz-copy-source-if-match, honoured "
        "by AWS S3 and SeaweedFS) or `head` (a HEAD first, for storage that ignores it, such as moto).",
        group="Storage",
    )
    cdn_base_url: str | None = setting(
        "CDN_BASE_URL", None, http_url, "Public files resolve to this base URL + the key.", group="Storage"
    )
    presign_expires_in: int = setting(
        "PRESIGN_EXPIRES_IN", 900, integer(60, 604800), "Seconds a presigned upload stays valid.", group="Storage"
    )
    embedded_storage: bool = setting(
        "EMBEDDED_STORAGE",
        False,
        boolean,
        "Set by `make run` when it started its own storage (then the bucket is created with CORS rules).",
        group="Storage",
    )
    embedded_dir: Path = setting(
        "EMBEDDED_DIR",
        ROOT / "var" / "embedded",
        directory_to_be,
        "Where `make run` keeps its embedded storage's data and, unless DATABASE_URL says otherwise, the "
        "records: one folder per STORAGE_PORT.",
        group="Storage",
        default_doc="var/embedded",
    )
    storage_port: int = setting(
        "STORAGE_PORT",
        9000,
        integer(1, 65535),
        "Port of the S3 endpoint of the embedded storage (SeaweedFS) that `make run` starts when no storage is "
        "configured; its other ports are picked free.",
        group="Storage",
    )
    storage_backend: str = setting(
        "STORAGE_BACKEND",
        "s3",
        choice("s3", "azure"),
        "`s3` (AWS S3 or any S3-compatible store) or `azure` (Azure Blob Storage).",
        group="Storage",
    )
    azure_storage_account: str | None = setting(
        "AZURE_STORAGE_ACCOUNT",
        None,
        pattern(AZURE_ACCOUNT_NAME, "3-24 lowercase letters and digits"),
        "Azure storage account (STORAGE_BACKEND=azure).",
        group="Storage",
    )
    azure_storage_key: Secret = setting(
        "AZURE_STORAGE_KEY", _no_secret, base64_secret, "The storage account's access key (base64).", group="Storage"
    )
    azure_blob_endpoint: str | None = setting(
        "AZURE_BLOB_ENDPOINT",
        None,
        http_url,
        "Blob service endpoint of an emulator or a sovereign cloud; unset: https://<account>.blob.core.windows.net.",
        group="Storage",
    )
    azure_container: str | None = setting(
        "AZURE_CONTAINER",
        None,
        pattern(AZURE_CONTAINER_NAME, "3-63 lowercase letters, digits and single hyphens"),
        "The private container (STORAGE_BACKEND=azure): uploads in quarantine, private files and their "
        "versions. It must not allow anonymous access.",
        group="Storage",
    )
    azure_public_container: str | None = setting(
        "AZURE_PUBLIC_CONTAINER",
        None,
        pattern(AZURE_CONTAINER_NAME, "3-63 lowercase letters, digits and single hyphens"),
        "The container public files and their versions are promoted to, readable anonymously (access level "
        "Blob) or through CDN_BASE_URL; needed when a table has public upload properties (see docs/azure.md).",
        group="Storage",
    )
    # -- value_upload: files the server creates -------------------------------------------------
    value_upload_remote_hosts: tuple[str, ...] = setting(
        "VALUE_UPLOAD_REMOTE_HOSTS",
        (),
        remote_origins,
        "Where `value_upload.remote_url` may fetch from, comma-separated: `host` or `host:port` (https; port 443 "
        "unless given), `*.example.com` (its subdomains), `http://host[:port]` (plain HTTP to that origin). A name "
        "must resolve to public addresses only; an IP address is reached only when listed as such. Empty: "
        "remote_url is refused.",
        group="Uploads",
    )
    value_upload_remote_timeout: int = setting(
        "VALUE_UPLOAD_REMOTE_TIMEOUT",
        10,
        integer(1, 300),
        "Seconds one remote_url fetch may take in all: connecting, redirects and reading the file.",
        group="Uploads",
    )
    value_upload_remote_max_bytes: int = setting(
        "VALUE_UPLOAD_REMOTE_MAX_BYTES",
        26_214_400,
        integer(1024, 1024**3),
        "Most bytes one remote_url fetch reads (held in memory; the property's own limit applies too).",
        group="Uploads",
    )
    value_upload_pdf_timeout: int = setting(
        "VALUE_UPLOAD_PDF_TIMEOUT",
        30,
        integer(1, 600),
        "Seconds the HTML of a `type: pdf` value_upload may take to render before the renderer is stopped.",
        group="Uploads",
    )
    # -- tables -----------------------------------------------------------------------------------
    schema_dir: Path = setting(
        "SCHEMA_DIR",
        ROOT / "app" / "schema",
        directory,
        "Folder of the table YAML files.",
        group="Tables",
        default_doc="app/schema",
    )
    # -- queue and worker -------------------------------------------------------------------------
    queue_url: str | None = setting(
        "QUEUE_URL",
        None,
        text,
        "SQS queue of the worker's jobs (image versions, virus scans); unset with `make run`: an embedded one.",
        group="Worker",
    )
    run_worker: bool = setting(
        "RUN_WORKER",
        False,
        boolean,
        "Run the worker (image versions, virus scans) inside the API process (`make run` sets it).",
        group="Worker",
    )
    worker_concurrency: int = setting(
        "WORKER_CONCURRENCY",
        _cpu_count,
        integer(1, 256),
        "Jobs (image versions, scans) one worker process handles at once.",
        group="Worker",
        default_doc="the CPU count",
    )
    version_lease_seconds: int = setting(
        "VERSION_LEASE_SECONDS", 300, integer(1, 43200), "How long a worker holds a version it builds.", group="Worker"
    )
    version_max_attempts: int = setting(
        "VERSION_MAX_ATTEMPTS", 5, integer(1, 100), "Attempts before a version is marked failed.", group="Worker"
    )
    version_retry_base_seconds: int = setting(
        "VERSION_RETRY_BASE_SECONDS",
        30,
        integer(0, 43200),
        "First retry delay of a failed job; doubles per attempt (at most an hour).",
        group="Worker",
    )
    queue_wait_seconds: int = setting(
        "QUEUE_WAIT_SECONDS", 20, integer(0, 20), "Long-poll wait of one queue receive.", group="Worker"
    )
    reconcile_interval: int = setting(
        "RECONCILE_INTERVAL",
        60,
        integer(1, 86400),
        "Seconds between reconciler rounds (re-queues the versions and scans whose job was lost).",
        group="Worker",
    )
    reconcile_after: int = setting(
        "RECONCILE_AFTER",
        120,
        integer(0, 86400),
        "A pending version nobody holds is re-queued once its upload was saved this many seconds ago.",
        group="Worker",
    )
    worker_metrics_host: str = setting(
        "WORKER_METRICS_HOST", "127.0.0.1", text, "Where a standalone worker serves /metrics.", group="Worker"
    )
    worker_metrics_port: int = setting(
        "WORKER_METRICS_PORT",
        0,
        integer(0, 65535),
        "Port of a standalone worker's /metrics and /healthz; 0: not served.",
        group="Worker",
    )
    sweep_grace: timedelta = setting(
        "SWEEP_GRACE",
        timedelta(hours=1),
        seconds(0, 30 * 86400),
        "Seconds after expiry before a never-saved upload is removed (never before a save could succeed).",
        group="Worker",
        default_doc="3600",
    )
    sweep_interval: timedelta = setting(
        "SWEEP_INTERVAL",
        timedelta(minutes=5),
        seconds(1, 86400),
        "Seconds between passes of the clean-up sweep.",
        group="Worker",
        default_doc="300",
    )
    # -- scanning ---------------------------------------------------------------------------------
    clamd_address: SocketAddress | None = setting(
        "CLAMD_ADDRESS",
        None,
        socket_address,
        "clamd (ClamAV's daemon) that scans uploads: `host:port` or an absolute unix socket path; unset with"
        " `make run`: a local clamd when Debian's clamav-daemon is installed.",
        group="Scanning",
    )
    clamd_timeout: int = setting(
        "CLAMD_TIMEOUT",
        10,
        integer(1, 600),
        "Seconds to connect to clamd, and for each write of a stream to it, before it counts as unreachable.",
        group="Scanning",
    )
    clamd_scan_timeout: int = setting(
        "CLAMD_SCAN_TIMEOUT",
        300,
        integer(1, 3600),
        "Seconds clamd may take to answer once it has a whole file (its own MaxScanTime is 120 by default).",
        group="Scanning",
    )
    # -- HTTP -------------------------------------------------------------------------------------
    host: str = setting("HOST", "127.0.0.1", text, "Address the API listens on.", group="HTTP")
    port: int = setting("PORT", 8000, integer(1, 65535), "Port the API listens on.", group="HTTP")
    # Longer than the idle timeouts of the clients and proxies in front (aiohttp 15 s, AWS ALB 60 s):
    # when the server closes first, a client can send its next request just as it closes, and fail.
    keep_alive_seconds: int = setting(
        "KEEP_ALIVE_SECONDS",
        KEEP_ALIVE_SECONDS,
        integer(1, 3600),
        "How long an idle client connection is kept open.",
        group="HTTP",
    )
    cors_origins: tuple[str, ...] = setting(
        "CORS_ORIGINS", (), origins, "Comma-separated origins allowed to call the API from a browser.", group="HTTP"
    )
    debug: bool = setting(
        "DEBUG", False, boolean, "Show unexpected errors' messages to clients (never in production).", group="HTTP"
    )
    log_format: str = setting(
        "LOG_FORMAT",
        "auto",
        choice("auto", "json", "text"),
        "`json`, `text`, or `auto`: text on a terminal, JSON otherwise.",
        group="HTTP",
    )
    log_level: str = setting(
        "LOG_LEVEL", "INFO", choice("debug", "info", "warning", "error"), "Lowest level logged.", group="HTTP"
    )
    # -- security ---------------------------------------------------------------------------------
    auth_jwt_secret: Secret = setting(
        "AUTH_JWT_SECRET", _no_secret, secret, "HS256 key of bearer tokens (at least 32 characters).", group="Security"
    )
    auth_jwt_public_key: Secret = setting(
        "AUTH_JWT_PUBLIC_KEY", _no_secret, pem_public_key, "RS256 PEM public key of bearer tokens.", group="Security"
    )
    auth_jwt_issuer: str | None = setting(
        "AUTH_JWT_ISSUER", None, text, "Required `iss` of bearer tokens.", group="Security"
    )
    auth_jwt_audience: str | None = setting(
        "AUTH_JWT_AUDIENCE", None, text, "Required `aud` of bearer tokens.", group="Security"
    )
    anonymous_reads: str = setting(
        "ANONYMOUS_READS",
        "public",
        choice("public", "all"),
        "Without auth: `public` serves only tables with `access.read: public` (the others to nobody); "
        "`all` serves every record and private file to every caller (a local demo; `make run` sets it "
        "on its embedded storage).",
        group="Security",
    )
    max_body_bytes: int = setting(
        "MAX_BODY_BYTES", 1_048_576, integer(1024, 64 * 1_048_576), "Largest request body accepted.", group="Security"
    )
    graphql_max_depth: int = setting(
        "GRAPHQL_MAX_DEPTH", 10, integer(2, 100), "Deepest selection a GraphQL document may nest.", group="Security"
    )
    graphql_max_aliases: int = setting(
        "GRAPHQL_MAX_ALIASES", 30, integer(1, 1000), "Most aliases in one GraphQL document.", group="Security"
    )
    graphql_max_tokens: int = setting(
        "GRAPHQL_MAX_TOKENS", 2000, integer(50, 100_000), "Most tokens in one GraphQL document.", group="Security"
    )
    graphql_introspection: bool = setting(
        "GRAPHQL_INTROSPECTION", True, boolean, "Answer introspection queries.", group="Security"
    )
    graphiql: bool = setting("GRAPHIQL", True, boolean, "Serve GraphiQL at GET /graphql.", group="Security")
    presign_rate_per_minute: int = setting(
        "PRESIGN_RATE_PER_MINUTE",
        60,
        integer(1, 100_000),
        "Presigns one caller may ask for per minute.",
        group="Security",
    )
    presign_rate_store: str = setting(
        "PRESIGN_RATE_STORE",
        "database",
        choice("database", "process"),
        "Where the presign rate's buckets live: `database` (shared by every API process) or `process`"
        " (in memory; N processes allow N times the rate).",
        group="Security",
    )
    max_pending_uploads: int = setting(
        "MAX_PENDING_UPLOADS",
        100,
        integer(1, 1_000_000),
        "Presigned, unsaved, unexpired uploads one caller may hold.",
        group="Security",
    )
    # -- live status (GraphQL subscriptions over WebSocket) ---------------------------------------
    live_subscriptions_per_connection: int = setting(
        "LIVE_SUBSCRIPTIONS_PER_CONNECTION",
        20,
        integer(1, 10_000),
        "Operations one WebSocket connection may run at once.",
        group="Live status",
    )
    live_subscriptions_per_caller: int = setting(
        "LIVE_SUBSCRIPTIONS_PER_CALLER",
        100,
        integer(1, 1_000_000),
        "Operations one caller (token subject, or address when anonymous) may run at once in one API process.",
        group="Live status",
    )
    live_init_timeout: int = setting(
        "LIVE_INIT_TIMEOUT",
        10,
        integer(1, 300),
        "Seconds a new WebSocket has to send `connection_init` before it is closed (4408).",
        group="Live status",
    )
    live_keepalive: int = setting(
        "LIVE_KEEPALIVE",
        15,
        integer(1, 3600),
        "Seconds between the server's `ping` messages; a client silent for two of them is closed (4408).",
        group="Live status",
    )
    live_idle_timeout: int = setting(
        "LIVE_IDLE_TIMEOUT",
        300,
        integer(1, 86400),
        "Seconds a connection may stay open with no operation running before it is closed (1000).",
        group="Live status",
    )
    live_message_rate: int = setting(
        "LIVE_MESSAGE_RATE",
        20,
        integer(1, 10_000),
        "Messages per second a client may send (bursts of 5 seconds' worth); a flood is closed (4429).",
        group="Live status",
    )
    live_resync_seconds: int = setting(
        "LIVE_RESYNC_SECONDS",
        10,
        integer(1, 3600),
        "Seconds one sweep re-reading every followed upload takes: it catches a lost notification, or a "
        "standalone worker's changes on SQLite.",
        group="Live status",
    )
    gc_freeze_survivors: bool = setting(
        "GC_FREEZE_SURVIVORS",
        True,
        boolean,
        "The API process moves what survives a young garbage collection (generation 1) out of the collector's "
        "reach, so full collections no longer walk every open subscription (a pause of seconds at thousands); "
        "false: only start-up objects are frozen.",
        group="Live status",
    )
    gc_refreeze_growth: int = setting(
        "GC_REFREEZE_GROWTH",
        100,
        integer(10, 10_000),
        "Percent the API process's peak memory may grow by before one full garbage collection walks every "
        "frozen object again, freeing the garbage among them (closed connections): one pause each time.",
        group="Live status",
    )

    # The variables the environment set (non-empty): `make run` fills in embedded parts only where
    # nothing was configured.
    given: frozenset[str] = field(default=frozenset(), compare=False, repr=False)

    @property
    def auth_enabled(self) -> bool:
        return bool(self.auth_jwt_secret or self.auth_jwt_public_key)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        given: set[str] = set()
        for name, variable in _variables():
            for env_name in (variable.env, *variable.fallback):
                raw = env.get(env_name)
                if raw is not None and (raw.strip() or variable.keep_empty):
                    values[name] = variable.parse(env_name, raw)
                    given.add(env_name)
                    break
        settings = cls(**values, given=frozenset(given))
        settings.check()
        return settings

    def check(self) -> None:
        """Rules across settings."""
        if self.auth_jwt_secret and self.auth_jwt_public_key:
            raise SettingsError("set AUTH_JWT_SECRET (HS256) or AUTH_JWT_PUBLIC_KEY (RS256), not both")
        if self.auth_jwt_secret and len(self.auth_jwt_secret.value) < 32:
            raise SettingsError("AUTH_JWT_SECRET must be at least 32 characters")
        if self.auth_jwt_public_key and "BEGIN PUBLIC KEY" not in self.auth_jwt_public_key.value:
            raise SettingsError("AUTH_JWT_PUBLIC_KEY must be a PEM public key (-----BEGIN PUBLIC KEY-----)")
        if self.anonymous_reads == "all" and self.auth_enabled:
            raise SettingsError(
                "ANONYMOUS_READS=all applies only without auth; with AUTH_JWT_SECRET or AUTH_JWT_PUBLIC_KEY set, "
                "each table's access.read decides: remove ANONYMOUS_READS"
            )
        self._check_azure()

    def _check_azure(self) -> None:
        """Azure needs an account, its key and a container; with none of the account settings `make run`
        starts Azurite (anything else started this way fails when it builds the storage)."""
        if self.storage_backend != "azure" or not self.azure_configured:
            return
        missing = [
            name
            for name, value in (
                ("AZURE_STORAGE_ACCOUNT", self.azure_storage_account),
                ("AZURE_STORAGE_KEY", self.azure_storage_key.value),
                ("AZURE_CONTAINER", self.azure_container),
            )
            if not value
        ]
        if self.azure_public_container is not None and self.azure_public_container == self.azure_container:
            raise SettingsError(
                "AZURE_PUBLIC_CONTAINER must differ from AZURE_CONTAINER: the private container never allows "
                "anonymous reads"
            )
        if missing:
            raise SettingsError(
                f"STORAGE_BACKEND=azure needs {' and '.join(missing)} as well "
                "(or none of AZURE_STORAGE_ACCOUNT, AZURE_STORAGE_KEY and AZURE_BLOB_ENDPOINT, for `make run` "
                "to start Azurite)"
            )

    @property
    def azure_configured(self) -> bool:
        """An Azure account or endpoint is set (else `make run` embeds Azurite)."""
        return bool({"AZURE_STORAGE_ACCOUNT", "AZURE_STORAGE_KEY", "AZURE_BLOB_ENDPOINT"} & self.given)

    def with_changes(self, **changes: Any) -> Settings:
        """A copy with some settings replaced (what `make run` fills in for its embedded parts)."""
        return replace(self, **changes)


def _variables() -> Iterator[tuple[str, Variable]]:
    for f in fields(Settings):
        variable = f.metadata.get("variable")
        if isinstance(variable, Variable):
            yield f.name, variable


@dataclass(frozen=True)
class Described:
    """One row of the settings table in the docs."""

    env: str
    default: str
    doc: str
    group: str


def describe() -> list[Described]:
    """Every setting with its variable, default and description, in declaration order."""
    rows = []
    for f in fields(Settings):
        variable = f.metadata.get("variable")
        if not isinstance(variable, Variable):
            continue
        if variable.default_doc is not None:
            default = variable.default_doc
        else:
            value = f.default if f.default is not MISSING else f.default_factory()  # type: ignore[misc,operator]
            default = _shown(value)
        names = " / ".join((variable.env, *variable.fallback))
        rows.append(Described(names, default, variable.doc, variable.group))
    return rows


def _shown(value: Any) -> str:
    if value is None or value == () or (isinstance(value, Secret) and not value):
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, timedelta):
        return str(int(value.total_seconds()))
    return str(value)
