"""The states of an upload, as stored in `uploads.status` and `uploads.promotion`."""

from __future__ import annotations

from enum import StrEnum


class UploadStatus(StrEnum):
    """Where one upload is in its life (`uploads.status`).

    ::

        issued ──save──▶ attached ──replaced, cleared or record deleted──▶ discarded ──objects gone──▶ deleted
          │
          └──expiry + grace (sweep claims it)──▶ expiring ──objects gone──▶ expired
                          (storage down: stays expiring, the next pass finishes)

    - `issued`: presigned (POST, PUT or multipart); the client may write to its quarantine key until
      `expires_at`. Only an issued upload can be saved, and only one save at a time holds it (the
      ETag it verified, in `uploads.etag`).
    - `attached`: saved into a record property; `promotion` says where its bytes are.
    - `discarded`: released by its record; its objects (permanent, versions, quarantine) are deleted
      after the transaction commits, or by the sweep when storage was down.
    - `deleted`: nothing of it is left in storage. Final.
    - `expiring`: never saved, past its expiry plus the grace; the sweep has claimed it and is deleting
      its objects. A save can no longer win it.
    - `expired`: never saved and nothing of it is left in storage. Final.
    """

    ISSUED = "issued"
    ATTACHED = "attached"
    DISCARDED = "discarded"
    DELETED = "deleted"
    EXPIRING = "expiring"
    EXPIRED = "expired"


class Promotion(StrEnum):
    """Where the bytes of a saved upload are (`uploads.promotion`; null until the save).

    ::

        pending ──promote()──▶ promoted ──expiry + grace (sweep empties the quarantine)──▶ settled
           │                                                                              ▲
           └──the scan finds it infected, or cannot scan it──▶ refused ──expiry + grace───┘

    - `pending`: saved, and the verified object is still in quarantine, never served (a property with
      `scan: true`: its file waits there for the virus scan). `promote()` copies it to its permanent key.
    - `promoted`: the permanent object holds the verified bytes and is what queries serve. Until the
      presign expires the client can still write to the quarantine key, so leftovers may appear there.
    - `refused`: the scan refused it (`scan_status` infected or failed); its object is deleted and it
      is never served. The upload stays attached, so its record reports why.
    - `settled`: the quarantine prefix was emptied once the presign could no longer write to it. Served
      only when it was promoted: a refused upload keeps its `scan_status` (see `is_served`).
    """

    PENDING = "pending"
    PROMOTED = "promoted"
    SETTLED = "settled"
    REFUSED = "refused"


class ScanState(StrEnum):
    """The virus scan of a saved upload (`uploads.scan_status`; null for a property without `scan`).

    ::

        pending ──clamd: OK──▶ clean (then promoted)
           ├──clamd: <signature> FOUND──▶ infected (object deleted)
           └──clamd cannot scan it (too large, over its limits), or the file changed──▶ failed

    A scanner that cannot be reached leaves it `pending` (retried with backoff), never served.
    `scan_result` holds the signature (infected) or the reason (failed).
    """

    PENDING = "pending"
    CLEAN = "clean"
    INFECTED = "infected"
    FAILED = "failed"


def is_served(promotion: str | None, scan_status: str | None) -> bool:
    """Whether queries may resolve a URL for an upload: its verified bytes are at the permanent key,
    and it was either never meant to be scanned or found clean."""
    return promotion in (Promotion.PROMOTED, Promotion.SETTLED) and scan_status in (None, ScanState.CLEAN)
