"""Database wiring: one Tortoise config for the app, the tests and aerich."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tortoise import Tortoise
from tortoise.context import TortoiseContext

from app.settings import ROOT, Settings

MODELS = ["app.models", "aerich.models"]
MIGRATIONS = ROOT / "migrations"


# SQLite runs in WAL mode (Tortoise's default). With synchronous=NORMAL a commit is durable once it
# is in the write-ahead log, which is synced at checkpoints instead of at every commit: nothing is
# lost or corrupted when the process crashes, but the last transactions can be lost when the machine
# loses power or the OS crashes. FULL (SQLite's default) syncs the log at every commit, about a
# millisecond per presign on the development machine, during which every other write waits. A
# `synchronous` parameter in DATABASE_URL (`sqlite://path?synchronous=FULL`) overrides this.
SQLITE_SYNCHRONOUS = "NORMAL"


def normalize_url(url: str) -> str:
    """Tortoise speaks `postgres://` (asyncpg); relative SQLite paths are taken from the repo root;
    SQLite gets synchronous=NORMAL unless the URL sets it."""
    if url.startswith("postgresql://"):
        url = "postgres://" + url[len("postgresql://") :]
    if not url.startswith("sqlite://"):
        return url
    base, _, query = url.partition("?")
    if base != "sqlite://:memory:":
        if not base.startswith("sqlite:///"):
            base = f"sqlite://{ROOT / base[len('sqlite://') :]}"
        Path(base[len("sqlite://") :]).parent.mkdir(parents=True, exist_ok=True)
    if not any(p.partition("=")[0] == "synchronous" for p in query.split("&")):
        query = f"{query}&synchronous={SQLITE_SYNCHRONOUS}" if query else f"synchronous={SQLITE_SYNCHRONOUS}"
    return f"{base}?{query}"


def tortoise_config(database_url: str) -> dict[str, Any]:
    return {
        "connections": {"default": normalize_url(database_url)},
        "apps": {"models": {"models": MODELS, "default_connection": "default"}},
        "use_tz": True,
        "timezone": "UTC",
    }


def __getattr__(name: str) -> Any:
    # aerich (`aerich -c aerich.ini ...`) reads `app.db.TORTOISE_ORM`: computed when asked for, so
    # importing this module never reads the settings.
    if name == "TORTOISE_ORM":
        return tortoise_config(Settings.from_env().database_url)
    raise AttributeError(name)


async def migrate(database_url: str) -> list[str]:
    """Apply pending aerich migrations; returns the names applied."""
    from aerich import Command

    command = Command(tortoise_config=tortoise_config(database_url), app="models", location=str(MIGRATIONS))
    try:
        await command.init()
        return await command.upgrade(run_in_transaction=True)
    finally:
        await Tortoise.close_connections()


async def connect(database_url: str) -> TortoiseContext:
    """Open the ORM for the whole process. The global fallback lets request tasks, worker tasks and
    the lifespan task (each with its own contextvars) share one connection pool."""
    return await Tortoise.init(config=tortoise_config(database_url), _enable_global_fallback=True)


async def disconnect(context: TortoiseContext) -> None:
    await context.close_connections()


async def ping() -> None:
    from tortoise import connections

    await connections.get("default").execute_query("SELECT 1")


def is_unavailable(exc: BaseException) -> bool:
    """True when `exc` (or what caused it) means the database could not be reached, as opposed to a
    query the database refused. asyncpg and Tortoise raise these when the server is down or the
    connection dropped; the pool reconnects by itself on a later request."""
    import asyncpg
    from tortoise.exceptions import DBConnectionError

    unreachable = (
        ConnectionError,
        TimeoutError,
        DBConnectionError,
        asyncpg.PostgresConnectionError,
        asyncpg.InterfaceError,
    )
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, unreachable):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


def is_postgres(database_url: str) -> bool:
    return database_url.startswith(("postgres://", "postgresql://", "asyncpg://"))


async def dedicated_connection() -> Any:
    """A new asyncpg connection, outside the pool, with the pool's own parameters (host, credentials,
    TLS, server settings): for a LISTEN, which holds its connection for the life of the process."""
    import inspect

    import asyncpg
    from tortoise import connections

    client: Any = connections.get("default")
    accepted = inspect.signature(asyncpg.connect).parameters
    extra = {k: v for k, v in client.extra.items() if k in accepted}
    return await asyncpg.connect(
        host=client.host,
        port=client.port,
        user=client.user,
        password=client.password,
        database=client.database,
        server_settings=dict(client.server_settings),
        **extra,
    )
