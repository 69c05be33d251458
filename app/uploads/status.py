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

    - `pending`: saved, and the verified object is still in quarantine, never served (a property whose
      files are checked further before promotion). `promote()` copies it to its permanent key.
    - `promoted`: the permanent object holds the verified bytes and is what queries serve. Until the
      presign expires the client can still write to the quarantine key, so leftovers may appear there.
    - `settled`: the quarantine prefix was emptied once the presign could no longer write to it.
    """

    PENDING = "pending"
    PROMOTED = "promoted"
    SETTLED = "settled"

    @property
    def served(self) -> bool:
        return self is not Promotion.PENDING
