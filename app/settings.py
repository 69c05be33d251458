"""One Settings object, read from the environment once; a bad value fails loudly with its name."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
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


KEEP_ALIVE_SECONDS = 75


def _int(env: Mapping[str, str], name: str, default: int, lo: int, hi: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not an integer") from None
    if not lo <= value <= hi:
        raise SettingsError(f"{name}={value} is out of range {lo}..{hi}")
    return value


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    lowered = raw.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise SettingsError(f"{name}={raw!r} is not a boolean (use true or false)")


def _url(env: Mapping[str, str], name: str) -> str | None:
    raw = (env.get(name) or "").strip()
    if not raw:
        return None
    if not raw.startswith(("http://", "https://")):
        raise SettingsError(f"{name}={raw!r} must start with http:// or https://")
    return raw.rstrip("/")


@dataclass(frozen=True)
class Settings:
    database_url: str = "sqlite://var/uploads.sqlite3"
    s3_bucket: str = "uploads"
    s3_endpoint_url: str | None = None
    s3_region: str = "us-east-1"
    s3_access_key_id: str | None = None  # None: botocore's credential chain (IAM role, profile)
    s3_secret_access_key: Secret = field(default_factory=lambda: Secret(""))
    s3_session_token: Secret = field(default_factory=lambda: Secret(""))
    s3_addressing_style: str = "auto"
    s3_public_url: str | None = None
    cdn_base_url: str | None = None
    presign_expires_in: int = 900
    schema_dir: Path = ROOT / "app" / "schema"
    queue_url: str | None = None
    cors_origins: tuple[str, ...] = ()
    host: str = "127.0.0.1"
    port: int = 8000
    # How long an idle client connection is kept open. Longer than the idle timeouts of the clients
    # and proxies in front (aiohttp 15 s, AWS ALB 60 s): when the server closes first, a client can
    # send its next request on the connection just as it closes, and that request fails.
    keep_alive_seconds: int = KEEP_ALIVE_SECONDS
    debug: bool = False
    embedded_storage: bool = False
    # Image versions: the worker beside the API, leases, retries and the reconciler (README, "Image versions").
    run_worker: bool = False
    # Version jobs one worker process handles at once; each is one image (its versions rendered side by side).
    worker_concurrency: int = field(default_factory=lambda: os.cpu_count() or 1)
    version_lease_seconds: int = 300
    version_max_attempts: int = 5
    version_retry_base_seconds: int = 30
    queue_wait_seconds: int = 20
    reconcile_interval: int = 60
    reconcile_after: int = 120
    # The standalone worker's own /metrics and /healthz (README, "Observability"); port 0: not served.
    worker_metrics_host: str = "127.0.0.1"
    worker_metrics_port: int = 0
    # Auth (SPEC §7): neither key set means explicit anonymous mode.
    auth_jwt_secret: Secret = field(default_factory=lambda: Secret(""))
    auth_jwt_public_key: Secret = field(default_factory=lambda: Secret(""))
    auth_jwt_issuer: str | None = None
    auth_jwt_audience: str | None = None
    # GraphQL and HTTP limits: cheap rejections before any resolver runs.
    max_body_bytes: int = 1_048_576
    graphql_max_depth: int = 10
    graphql_max_aliases: int = 30
    graphql_max_tokens: int = 2000
    graphql_introspection: bool = True
    graphiql: bool = True
    # Per-caller upload limits.
    presign_rate_per_minute: int = 60
    max_pending_uploads: int = 100

    @property
    def auth_enabled(self) -> bool:
        return bool(self.auth_jwt_secret or self.auth_jwt_public_key)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        style = env.get("S3_ADDRESSING_STYLE", "auto")
        if style not in ("auto", "path", "virtual"):
            raise SettingsError(f"S3_ADDRESSING_STYLE={style!r} must be auto, path or virtual")
        bucket = env.get("S3_BUCKET", "uploads").strip()
        if not bucket:
            raise SettingsError("S3_BUCKET is empty")
        schema_dir = Path(env.get("SCHEMA_DIR") or ROOT / "app" / "schema")
        if not schema_dir.is_dir():
            raise SettingsError(f"SCHEMA_DIR={str(schema_dir)!r} is not a directory")
        database_url = env.get("DATABASE_URL") or "sqlite://var/uploads.sqlite3"
        if not database_url.startswith(("sqlite://", "postgres://", "postgresql://", "asyncpg://")):
            raise SettingsError(
                f"DATABASE_URL must be sqlite://… or postgres://…, got {database_url.split(':')[0]!r}://…"
            )
        origins = tuple(o.strip().rstrip("/") for o in env.get("CORS_ORIGINS", "").split(",") if o.strip())
        return cls(
            database_url=database_url,
            s3_bucket=bucket,
            s3_endpoint_url=_url(env, "S3_ENDPOINT_URL"),
            s3_region=env.get("S3_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1",
            s3_access_key_id=env.get("AWS_ACCESS_KEY_ID") or None,
            s3_secret_access_key=Secret(env.get("AWS_SECRET_ACCESS_KEY", "")),
            s3_session_token=Secret(env.get("AWS_SESSION_TOKEN", "")),
            s3_addressing_style=style,
            s3_public_url=_url(env, "S3_PUBLIC_URL"),
            cdn_base_url=_url(env, "CDN_BASE_URL"),
            presign_expires_in=_int(env, "PRESIGN_EXPIRES_IN", 900, 60, 604800),
            schema_dir=schema_dir,
            queue_url=(env.get("QUEUE_URL") or "").strip() or None,
            cors_origins=origins,
            host=env.get("HOST") or "127.0.0.1",
            port=_int(env, "PORT", 8000, 1, 65535),
            keep_alive_seconds=_int(env, "KEEP_ALIVE_SECONDS", KEEP_ALIVE_SECONDS, 1, 3600),
            debug=_bool(env, "DEBUG", False),
            embedded_storage=_bool(env, "EMBEDDED_STORAGE", False),
            run_worker=_bool(env, "RUN_WORKER", False),
            worker_concurrency=_int(env, "WORKER_CONCURRENCY", os.cpu_count() or 1, 1, 256),
            version_lease_seconds=_int(env, "VERSION_LEASE_SECONDS", 300, 1, 43200),
            version_max_attempts=_int(env, "VERSION_MAX_ATTEMPTS", 5, 1, 100),
            version_retry_base_seconds=_int(env, "VERSION_RETRY_BASE_SECONDS", 30, 0, 43200),
            queue_wait_seconds=_int(env, "QUEUE_WAIT_SECONDS", 20, 0, 20),
            reconcile_interval=_int(env, "RECONCILE_INTERVAL", 60, 1, 86400),
            reconcile_after=_int(env, "RECONCILE_AFTER", 120, 0, 86400),
            worker_metrics_host=(env.get("WORKER_METRICS_HOST") or "").strip() or "127.0.0.1",
            worker_metrics_port=_int(env, "WORKER_METRICS_PORT", 0, 0, 65535),
            **_security(env),
        )


def _security(env: Mapping[str, str]) -> dict[str, Any]:
    secret = Secret(env.get("AUTH_JWT_SECRET", "").strip())
    public_key = Secret(env.get("AUTH_JWT_PUBLIC_KEY", "").strip().replace("\\n", "\n"))
    if secret and public_key:
        raise SettingsError("set AUTH_JWT_SECRET (HS256) or AUTH_JWT_PUBLIC_KEY (RS256), not both")
    if secret and len(secret.value) < 32:
        raise SettingsError("AUTH_JWT_SECRET must be at least 32 characters")
    if public_key and "BEGIN PUBLIC KEY" not in public_key.value:
        raise SettingsError("AUTH_JWT_PUBLIC_KEY must be a PEM public key (-----BEGIN PUBLIC KEY-----)")
    return {
        "auth_jwt_secret": secret,
        "auth_jwt_public_key": public_key,
        "auth_jwt_issuer": (env.get("AUTH_JWT_ISSUER") or "").strip() or None,
        "auth_jwt_audience": (env.get("AUTH_JWT_AUDIENCE") or "").strip() or None,
        "max_body_bytes": _int(env, "MAX_BODY_BYTES", 1_048_576, 1024, 64 * 1_048_576),
        "graphql_max_depth": _int(env, "GRAPHQL_MAX_DEPTH", 10, 2, 100),
        "graphql_max_aliases": _int(env, "GRAPHQL_MAX_ALIASES", 30, 1, 1000),
        "graphql_max_tokens": _int(env, "GRAPHQL_MAX_TOKENS", 2000, 50, 100_000),
        "graphql_introspection": _bool(env, "GRAPHQL_INTROSPECTION", True),
        "graphiql": _bool(env, "GRAPHIQL", True),
        "presign_rate_per_minute": _int(env, "PRESIGN_RATE_PER_MINUTE", 60, 1, 100_000),
        "max_pending_uploads": _int(env, "MAX_PENDING_UPLOADS", 100, 1, 1_000_000),
    }
