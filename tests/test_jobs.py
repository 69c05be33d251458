"""Queue message bodies (app/jobs.py): what the API sends, and what the worker accepts."""

from __future__ import annotations

import pytest

from app.jobs import Job, JobKind, parse, scan_message, versions_message


def test_round_trip() -> None:
    assert parse(versions_message(42)) == Job(JobKind.VERSIONS, 42)
    assert parse(scan_message(42)) == Job(JobKind.SCAN, 42)
    assert (versions_message(7), scan_message(7)) == ("7", "scan:7")  # a bare id: the queue's first format


@pytest.mark.parametrize(
    "body",
    [
        "",
        "scan:",
        "scan:x",
        "-3",
        "+5",
        " 12",
        "12 ",
        "1.5",
        "versions:3",
        "scan:-1",
        "٣",
        "9" * 20,
        "scan:" + "9" * 19,
    ],
)
def test_anything_else_is_no_job(body: str) -> None:
    assert parse(body) is None
