"""Database wiring: URLs as Tortoise takes them, and the SQLite durability setting (app/db.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from tortoise import Tortoise, connections

from app.db import ROOT, normalize_url, tortoise_config


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("sqlite://var/x.sqlite3", f"sqlite://{ROOT}/var/x.sqlite3?synchronous=NORMAL"),
        ("sqlite:///tmp/a/b.sqlite3", "sqlite:///tmp/a/b.sqlite3?synchronous=NORMAL"),
        ("sqlite:///tmp/a/b.sqlite3?synchronous=FULL", "sqlite:///tmp/a/b.sqlite3?synchronous=FULL"),
        (
            "sqlite:///tmp/a/b.sqlite3?journal_size_limit=1",
            "sqlite:///tmp/a/b.sqlite3?journal_size_limit=1&synchronous=NORMAL",
        ),
        ("sqlite://:memory:", "sqlite://:memory:?synchronous=NORMAL"),
        ("postgresql://u@h:5432/d", "postgres://u@h:5432/d"),
        ("postgres://u@h/d?ssl=require", "postgres://u@h/d?ssl=require"),
    ],
)
def test_urls(given: str, expected: str) -> None:
    assert normalize_url(given) == expected


@pytest.mark.parametrize(("query", "level"), [("", 1), ("?synchronous=FULL", 2)])
async def test_sqlite_is_wal_with_synchronous_normal_unless_the_url_says_otherwise(
    tmp_path: Path, query: str, level: int
) -> None:
    await Tortoise.init(config=tortoise_config(f"sqlite://{tmp_path}/db.sqlite3{query}"))
    try:
        db = connections.get("default")
        _, synchronous = await db.execute_query("PRAGMA synchronous")
        _, journal = await db.execute_query("PRAGMA journal_mode")
        assert tuple(synchronous[0]) == (level,) and tuple(journal[0]) == ("wal",)
    finally:
        await Tortoise.close_connections()
