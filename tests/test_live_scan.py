"""Live status of a scanned file: a subscriber sees it pending (no URL), then clean with its URL once
clamd has passed it and the worker has promoted it, and the subscription completes then."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests import files
from tests.conftest import free_port
from tests.scanning import started_clamd
from tests.test_scanning_flow import queue_url, save, scanning_app, schema  # noqa: F401 - fixtures
from tests.ws_support import connected, serving

SCANNED = """
subscription($id: ID!, $name: String!) {
  property_upload_changed(record_id: $id, name: $name) { url file_name scan_status scan_result }
}"""


async def test_a_subscriber_sees_the_scan_end_and_the_file_promoted(
    harness_factory: Any,
    queue_url: str,  # noqa: F811
    schema: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    port = free_port()
    # Nothing listens on the scanner's port yet: the file waits, pending, until clamd starts below.
    h = await scanning_app(harness_factory, queue_url, schema, f"127.0.0.1:{port}")
    data = files.pdf(2)
    saved = await save(h, "documents", "resume", data, "cv.pdf", "application/pdf")
    async with serving(h.app) as url, connected(url) as client:
        await client.init()
        await client.subscribe("s", query=SCANNED, id=saved["id"], name="resume")
        first = await client.receive()
        assert first["type"] == "next", first
        pending = first["payload"]["data"]["property_upload_changed"]
        assert (pending["scan_status"], pending["url"], pending["file_name"]) == ("pending", None, "cv.pdf")
        clamd = started_clamd(tmp_path / "clamd", port=port)
        try:
            events, end = await client.until_done("s", within=60)
        finally:
            clamd.stop()
    last = events[-1]["data"]["property_upload_changed"]
    assert end["type"] == "complete"
    assert last["scan_status"] == "clean" and last["scan_result"] is None and last["url"]
    assert all(e["data"]["property_upload_changed"]["scan_status"] in ("pending", "clean") for e in events)
