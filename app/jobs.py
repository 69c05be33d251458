"""Pure: what one queue message asks for. Every job concerns one upload; the body names which job.

- `<upload id>`: build the upload's pending image versions (app/versions.py). The first format of the
  queue, kept so that messages queued before scans existed are still understood.
- `scan:<upload id>`: scan the upload's quarantined file for viruses (app/scanning.py).

One queue carries both: one worker loop, one reconciler and one dead-letter queue serve every job, and
`make run` needs one embedded queue.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

_SCAN = "scan:"
_MAX_ID = 2**63 - 1  # the uploads table's BIGINT


class JobKind(StrEnum):
    VERSIONS = "versions"
    SCAN = "scan"


@dataclass(frozen=True)
class Job:
    kind: JobKind
    upload_id: int


def versions_message(upload_id: int) -> str:
    return str(upload_id)


def scan_message(upload_id: int) -> str:
    return f"{_SCAN}{upload_id}"


def parse(body: str) -> Job | None:
    """The job a message body asks for; None for a body this server never sends."""
    kind, digits = (JobKind.SCAN, body[len(_SCAN) :]) if body.startswith(_SCAN) else (JobKind.VERSIONS, body)
    if not digits.isascii() or not digits.isdigit() or len(digits) > 19 or int(digits) > _MAX_ID:
        return None
    return Job(kind, int(digits))
