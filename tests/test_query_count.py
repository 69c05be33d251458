"""`records` costs a constant number of database queries whatever the page size (SPEC §4).

Queries are counted for real: every statement Tortoise sends goes through its `tortoise.db_client`
logger at DEBUG level, on SQLite and on PostgreSQL alike.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from tests import files
from tests.conftest import Harness
from tests.gql import RECORD_CREATE, RECORDS
from tests.test_flow import upload_photo

_SQL_VERBS = ("SELECT", "INSERT", "UPDATE", "DELETE", "WITH")


class _QueryCounter(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.statements: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        # Only SQL statements: the same logger also reports pool creation and closing.
        text = str(record.msg if not record.args else record.args[0] if record.msg == "%s: %s" else record.msg)
        if text.lstrip().upper().startswith(_SQL_VERBS):
            self.statements.append(text)


@contextmanager
def count_queries() -> Iterator[_QueryCounter]:
    logger = logging.getLogger("tortoise.db_client")
    counter = _QueryCounter()
    previous = logger.level
    logger.setLevel(logging.DEBUG)
    logger.addHandler(counter)
    try:
        yield counter
    finally:
        logger.removeHandler(counter)
        logger.setLevel(previous)


async def _add_photos(h: Harness, n: int) -> None:
    for i in range(n):
        url = await upload_photo(h, files.png(40 + i % 7, 30))
        props = [{"name": "caption", "value": f"photo {i}"}, {"name": "image", "value": url}]
        await h.ok(RECORD_CREATE, {"table": "photos", "prop": "image", "props": props})


async def _records_queries(h: Harness, expected: int) -> list[str]:
    with count_queries() as counter:
        data = await h.ok(RECORDS, {"table": "photos", "prop": "image", "per_page": 100})
    results = data["records"]["results"]
    assert len(results) == expected
    # Every result really carries its upload and versions, so the queries did their job.
    assert all(r["upload"]["url"] and len(r["upload"]["version_details"]) == 3 for r in results)
    return counter.statements


async def test_records_page_runs_constant_queries(harness_factory: Any) -> None:
    # 100 presigns in a few seconds from one caller: lift the per-caller abuse limits for this test.
    h: Harness = await harness_factory(PRESIGN_RATE_PER_MINUTE=100_000, MAX_PENDING_UPLOADS=100_000)
    await _add_photos(h, 10)
    with_10 = await _records_queries(h, 10)
    await _add_photos(h, 90)
    with_100 = await _records_queries(h, 100)

    # count + page of records + their uploads + those uploads' versions
    assert len(with_100) == 4, with_100
    assert len(with_100) == len(with_10), (with_10, with_100)


FILTERED = """query($caption: String!) {
  records(per_page: 100, filter: {table: {value: "photos"}, properties: [{name: "caption", starts_with: $caption},
          {name: "image", exists: true}], or: [{created_at: {gte: "2020-01-01"}}, {user_id: {value: "x"}}]},
          sort: [{properties: [{name: "caption", order: DESC}]}]) {
    total_entries has_next_page
    results {
      id caption: property(name: "caption")
      image: property_upload(name: "image") { url versions }
      same: related_record(table: "photos", join_on_property: "id") { id image: property_upload(name: "image") { url } }
      others: related_records(table: "photos", join_on_property: "id", foreign_property: "id", limit: 2) { id }
    }
  }
}"""


async def test_filtered_sorted_page_with_related_records_runs_constant_queries(harness_factory: Any) -> None:
    h: Harness = await harness_factory(PRESIGN_RATE_PER_MINUTE=100_000, MAX_PENDING_UPLOADS=100_000)

    async def run(expected: int) -> list[str]:
        with count_queries() as counter:
            data = await h.ok(FILTERED, {"caption": "photo"})
        results = data["records"]["results"]
        assert len(results) == expected and data["records"]["total_entries"] == expected
        assert all(r["same"]["id"] == r["id"] and r["same"]["image"]["url"] for r in results)
        assert all([o["id"] for o in r["others"]] == [r["id"]] for r in results)
        return counter.statements

    await _add_photos(h, 5)
    with_5 = await run(5)
    await _add_photos(h, 25)
    with_30 = await run(30)
    # count + page + uploads + versions, then for each related field: its records + their uploads + versions
    assert len(with_30) == 4 + 3 + 3, with_30
    assert len(with_30) == len(with_5)
