"""Helpers for the large-file tests: a table that admits multipart sizes, GraphQL documents, PUTs."""

from __future__ import annotations

import random
import shutil
from pathlib import Path
from typing import Any

import httpx

from app.settings import ROOT

MIB = 1024**2

# A public `upload` property of up to 12 MiB: big enough for a three-part multipart upload of
# 5 MiB parts, small enough that an oversize total is cheap to produce.
VIDEOS_YML = """
name: videos
properties:
  - name: title
    type: string
  - name: clip
    type: upload
    options:
      content_length: { gte: 1, lte: 12288 }
      content_types: [video/mp4, video/webm]
"""

PUT_PRESIGN = """
mutation($table: String!, $prop: String!, $put: PutUploadInput) {
  property_upload_presigned_url(table: $table, property_name: $prop, put: $put) {
    upload_url upload_url_payload method key url expires_at max_size content_types headers
  }
}"""

MP_CREATE = """
mutation($table: String!, $prop: String!, $name: String!, $type: String!, $size: BigInt!) {
  multipart_upload_create(table: $table, property_name: $prop, file_name: $name, content_type: $type, size: $size) {
    upload_id key part_size part_count expires_at
  }
}"""

MP_SIGN = """
mutation($id: String!, $key: String!, $parts: [Int!]!) {
  multipart_upload_sign_parts(upload_id: $id, key: $key, part_numbers: $parts) { part_number url expires_at }
}"""

MP_LIST = """
mutation($id: String!, $key: String!) {
  multipart_upload_list_parts(upload_id: $id, key: $key) { part_number etag size }
}"""

MP_COMPLETE = """
mutation($id: String!, $key: String!, $parts: [CompletedPartInput!]!) {
  multipart_upload_complete(upload_id: $id, key: $key, parts: $parts) { key url size }
}"""

MP_ABORT = "mutation($id: String!, $key: String!) { multipart_upload_abort(upload_id: $id, key: $key) }"

SAVE = """
mutation($table: String!, $props: [PropertyInputType], $prop: String!) {
  record_create(record: {table: $table, properties: $props}) {
    id properties upload: property_upload(name: $prop) { url size content_type file_name }
  }
}"""


def schema_dir(tmp_path: Path) -> Path:
    """The shipped tables plus `videos`."""
    folder = tmp_path / "schema"
    folder.mkdir()
    for path in (ROOT / "app" / "schema").glob("*.yml"):
        shutil.copy(path, folder / path.name)
    (folder / "videos.yml").write_text(VIDEOS_YML)
    return folder


def blob(size: int, seed: int = 1) -> bytes:
    return random.Random(seed).randbytes(size)


async def put(url: str, data: bytes, headers: dict[str, str]) -> httpx.Response:
    async with httpx.AsyncClient(timeout=60) as client:
        return await client.put(url, content=data, headers=headers)


async def download(url: str) -> httpx.Response:
    async with httpx.AsyncClient(timeout=60) as client:
        return await client.get(url)


def record_vars(table: str, prop: str, value: str, **plain: str) -> dict[str, Any]:
    props = [{"name": k, "value": v} for k, v in plain.items()] + [{"name": prop, "value": value}]
    return {"table": table, "prop": prop, "props": props}
