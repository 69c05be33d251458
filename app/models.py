"""Tortoise models: fields only. Behaviour lives in the use-case modules."""

from __future__ import annotations

from typing import Any

from tortoise import fields
from tortoise.models import Model


class Record(Model):
    """A platformOS record: built-in columns plus plain property values in `properties`."""

    id = fields.BigIntField(primary_key=True)
    table = fields.CharField(max_length=63)
    # Plain property values by name; upload properties live in `uploads`, not here.
    properties: dict[str, Any] = fields.JSONField(default=dict)  # type: ignore[assignment]
    owner = fields.CharField(max_length=255, null=True)  # platformOS's user_id
    external_id = fields.CharField(max_length=255, null=True)
    # Set by the records use case, not by Tortoise: platformOS lets a client give both.
    created_at = fields.DatetimeField()
    updated_at = fields.DatetimeField()
    deleted_at = fields.DatetimeField(null=True)  # soft delete, as platformOS: purged later

    uploads: fields.ReverseRelation[Upload]

    class Meta:
        table = "records"
        # Live records (deleted_at IS NULL) by table in each built-in sort order; the partial indexes
        # are in the migration (Tortoise cannot declare them), per-property ones in app/record_indexes.py.


class Upload(Model):
    """One presigned upload, from issue to attachment (or expiry, rejection, deletion)."""

    id = fields.BigIntField(primary_key=True)
    token = fields.CharField(max_length=32, unique=True)
    table = fields.CharField(max_length=63)
    property_name = fields.CharField(max_length=63)
    owner = fields.CharField(max_length=255, null=True)  # indexed with status and expiry, see Meta
    status = fields.CharField(max_length=16, default="issued", db_index=True)  # app.uploads.UploadStatus
    method = fields.CharField(max_length=16, default="post")  # post | put | multipart
    # The exact permanent key once known (its quarantine key is `cache/` + key; app/keys.py).
    key = fields.CharField(max_length=1024, null=True)
    multipart_upload_id = fields.CharField(max_length=1024, null=True)
    record: fields.ForeignKeyNullableRelation[Record] = fields.ForeignKeyField(
        "models.Record", related_name="uploads", null=True, on_delete=fields.SET_NULL
    )
    record_id: int | None
    # Limits signed into the presign, re-checked at confirm from what storage reports.
    min_size = fields.BigIntField(default=0)
    max_size = fields.BigIntField()
    content_types: list[str] = fields.JSONField(default=list)  # type: ignore[assignment]
    declared_content_type = fields.CharField(max_length=255, null=True)
    acl = fields.CharField(max_length=16)
    content_disposition = fields.CharField(max_length=16)  # inline | attachment
    cache_control = fields.CharField(max_length=255, null=True)
    checksum_sha256 = fields.CharField(max_length=64, null=True)  # base64, as S3's header
    declared_size = fields.BigIntField(null=True)  # exact length signed into a PUT or multipart
    # The ETag a save verified: held while that save promotes the object (no other save may win the
    # upload with other bytes), then the condition of every copy of it.
    etag = fields.CharField(max_length=255, null=True)
    promotion = fields.CharField(max_length=16, null=True)  # app.uploads.Promotion; null until saved
    # The virus scan of a property with `scan: true` (app/scanning.py): app.uploads.ScanState, null for
    # a file that is not scanned; the signature found or the reason it could not be scanned; and until
    # when nobody else should scan it (a worker scanning it, or the retry its message waits for).
    scan_status = fields.CharField(max_length=16, null=True)
    scan_result = fields.TextField(null=True)
    scan_lease_until = fields.DatetimeField(null=True)
    # What storage reported at confirm.
    file_name = fields.CharField(max_length=255, null=True)
    size = fields.BigIntField(null=True)
    content_type = fields.CharField(max_length=255, null=True)
    width = fields.IntField(null=True)
    height = fields.IntField(null=True)
    expires_at = fields.DatetimeField()
    created_at = fields.DatetimeField(auto_now_add=True)
    attached_at = fields.DatetimeField(null=True)

    versions: fields.ReverseRelation[UploadVersion]

    class Meta:
        table = "uploads"
        # (owner, status, expires_at) serves the per-caller pending cap of every presign: without it
        # SQLite picks (status, expires_at) and scans every caller's pending uploads.
        indexes = (
            ("record_id", "property_name"),
            ("status", "expires_at"),
            ("owner", "status", "expires_at"),
            ("promotion", "expires_at"),
        )


class UploadVersion(Model):
    """One image version of an attached upload; the worker moves it pending -> ready | failed."""

    id = fields.BigIntField(primary_key=True)
    upload: fields.ForeignKeyRelation[Upload] = fields.ForeignKeyField(
        "models.Upload", related_name="versions", on_delete=fields.CASCADE
    )
    upload_id: int
    name = fields.CharField(max_length=63)
    key = fields.CharField(max_length=1024)
    status = fields.CharField(max_length=16, default="pending", db_index=True)  # pending | ready | failed
    width = fields.IntField(null=True)
    height = fields.IntField(null=True)
    size = fields.BigIntField(null=True)
    format = fields.CharField(max_length=16, null=True)
    error = fields.TextField(null=True)
    attempts = fields.IntField(default=0)
    lease_until = fields.DatetimeField(null=True)  # a worker holds the version until then
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "upload_versions"
        unique_together = (("upload", "name"),)


class RateBucket(Model):
    """One caller's presign token bucket, shared by every API process (app/rate_buckets.py)."""

    key = fields.CharField(max_length=255, primary_key=True)  # Caller.rate_key, hashed when longer
    tokens = fields.FloatField()
    stamp = fields.FloatField(db_index=True)  # Unix time of the last take; long-idle rows are pruned

    class Meta:
        table = "rate_buckets"
