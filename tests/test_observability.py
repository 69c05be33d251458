"""/metrics in Prometheus text format, and request ids in every log line of a request."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families

from app.logs import make_handler
from tests import files
from tests.conftest import Harness, post_form, uploaded_key
from tests.gql import IMAGE_PRESIGN, RECORD_CREATE
from tests.test_flow import upload_photo


async def scrape(h: Harness) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = await h.http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def delta(before: dict, after: dict, name: str, **labels: str) -> float:  # type: ignore[type-arg]
    key = (name, tuple(sorted(labels.items())))
    return after.get(key, 0.0) - before.get(key, 0.0)


async def test_metrics_count_presigns_saves_and_latency(h: Harness) -> None:
    before = await scrape(h)
    url = await upload_photo(h)
    created = (
        await h.ok(RECORD_CREATE, {"table": "photos", "prop": "image", "props": [{"name": "image", "value": url}]})
    )["record_create"]
    code = await h.error_code(
        RECORD_CREATE, {"table": "photos", "prop": "image", "props": [{"name": "image", "value": url}]}
    )
    assert code == "UPLOAD_ALREADY_ATTACHED"
    assert await h.error_code(IMAGE_PRESIGN, {"table": "nope", "prop": "image"}) == "TABLE_NOT_FOUND"
    # An alias still counts under the mutation's real name.
    await h.ok(f"mutation {{ gone: record_delete(id: {created['id']}) {{ id }} }}")
    after = await scrape(h)

    assert delta(before, after, "uploads_presigns_total", mutation="image_presign_url", outcome="ok") == 1
    assert delta(before, after, "uploads_presigns_total", mutation="image_presign_url", outcome="TABLE_NOT_FOUND") == 1
    assert delta(before, after, "uploads_saves_total", operation="create", outcome="ok") == 1
    assert delta(before, after, "uploads_saves_total", operation="create", outcome="UPLOAD_ALREADY_ATTACHED") == 1
    assert delta(before, after, "uploads_saves_total", operation="delete", outcome="ok") == 1
    graphql_count = delta(
        before, after, "http_request_duration_seconds_count", method="POST", route="/graphql", status="200"
    )
    assert graphql_count == 5
    # The worker's hooks are exported even before a worker reports anything.
    assert ("uploads_queue_lag_seconds_count", ()) in after


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    """The app's log lines as the JSON handler writes them."""
    stream = io.StringIO()
    handler = make_handler("json", stream)
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield stream
    root.removeHandler(handler)
    root.setLevel(previous)


def lines(stream: io.StringIO) -> list[dict]:  # type: ignore[type-arg]
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


async def test_request_id_honoured_and_in_every_log_line(h: Harness, captured: io.StringIO) -> None:
    # The object is uploaded but storage goes away before the save: the save logs a storage warning.
    presigned = (await h.ok(IMAGE_PRESIGN, {"table": "photos", "prop": "image", "type": "image/png"}))[
        "image_presign_url"
    ]
    assert (await post_form(presigned, files.png(), "a.png", "image/png")).status_code == 201
    url = f"{presigned['upload_url']}/{uploaded_key(presigned, 'a.png')}"
    h.moto.stop()
    try:
        response = await h.http.post(
            "/graphql",
            json={
                "query": RECORD_CREATE,
                "variables": {"table": "photos", "prop": "image", "props": [{"name": "image", "value": url}]},
            },
            headers={"X-Request-ID": "trace-abc.123"},
        )
    finally:
        h.moto.start()
    assert response.headers["x-request-id"] == "trace-abc.123"
    assert response.json()["errors"][0]["extensions"]["code"] == "STORAGE_UNAVAILABLE"

    mine = [entry for entry in lines(captured) if entry["request_id"] == "trace-abc.123"]
    loggers = {entry["logger"] for entry in mine}
    # The storage adapter's warning (app.storage.s3, app.storage.azure) carries the request id too.
    assert any(name.startswith("app.storage") for name in loggers) and "app.access" in loggers, mine
    access = next(entry for entry in mine if entry["logger"] == "app.access")
    assert access["path"] == "/graphql" and access["status"] == 200 and access["duration_ms"] > 0
    # Nothing the app logged went out without a request id (httpx lines are the test client's own).
    assert all(entry["request_id"] != "-" for entry in lines(captured) if entry["logger"].startswith("app."))


@pytest.mark.parametrize("sent", [None, "", "x" * 200, "evil\nline", "a b", "ünï".encode()])
async def test_insane_or_missing_request_id_is_replaced(
    h: Harness, sent: str | bytes | None, captured: io.StringIO
) -> None:
    headers = {} if sent is None else {"X-Request-ID": sent}
    response = await h.http.get("/healthz", headers=headers)
    rid = response.headers["x-request-id"]
    assert rid != sent and len(rid) == 32 and rid.isalnum()
    access = [entry for entry in lines(captured) if entry["logger"] == "app.access"]
    assert access[-1]["request_id"] == rid


def test_text_format_carries_the_request_id() -> None:
    from app.logs import request_id

    stream = io.StringIO()
    logger = logging.getLogger("app.test_text")
    logger.addHandler(make_handler("text", stream))
    logger.propagate = False
    token = request_id.set("req-1")
    try:
        logger.warning("hello")
    finally:
        request_id.reset(token)
    assert "[req-1]: hello" in stream.getvalue() and "WARNING app.test_text" in stream.getvalue()
    with pytest.raises(ValueError, match="LOG_FORMAT"):
        make_handler("yaml")
