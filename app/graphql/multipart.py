"""GraphQL adapter of multipart uploads: types and thin resolvers over app.uploads.multipart.

One mutation per Uppy AwsS3 multipart hook (createMultipartUpload, signPart, listParts,
completeMultipartUpload, abortMultipartUpload).
"""

from __future__ import annotations

from datetime import datetime

import strawberry

from app.graphql.context import Info
from app.graphql.inputs import CompletedPartInput
from app.graphql.scalars import BigInt
from app.uploads import ExactUpload, Multipart


@strawberry.type(description="A started multipart upload: send parts of part_size bytes (the last may be smaller).")
class MultipartUpload:
    upload_id: str
    key: str
    part_size: BigInt
    part_count: int
    expires_at: datetime = strawberry.field(description="Parts can be signed, listed and completed until then.")


@strawberry.type(description="A presigned PUT URL for one part; sign it again once expired.")
class SignedPart:
    part_number: int
    url: str
    expires_at: datetime


@strawberry.type(description="A part storage holds, with the ETag to send at completion.")
class UploadedPart:
    part_number: int
    etag: str
    size: BigInt


@strawberry.type(description="The assembled object; save `url` (or `key`) with record_create.")
class CompletedUpload:
    key: str
    url: str
    size: BigInt


def _use_case(info: Info) -> Multipart:
    return info.context.uploads.multipart


@strawberry.type
class MultipartMutation:
    @strawberry.mutation(description="Start a multipart upload of 5 MiB to 5 TiB into an upload property.")
    async def multipart_upload_create(
        self, info: Info, table: str, property_name: str, file_name: str, content_type: str, size: BigInt
    ) -> MultipartUpload:
        info.context.records.access.check_create(info.context.caller, table)
        started = await _use_case(info).create(
            info.context.caller, table, property_name, ExactUpload(file_name, content_type, int(size))
        )
        return MultipartUpload(
            upload_id=started.upload_id,
            key=started.key,
            part_size=BigInt(started.part_size),
            part_count=started.part_count,
            expires_at=started.expires_at,
        )

    @strawberry.mutation(description="Presigned PUT URLs for parts (1 to part_count); callable again any time.")
    async def multipart_upload_sign_parts(
        self, info: Info, upload_id: str, key: str, part_numbers: list[int]
    ) -> list[SignedPart]:
        signed = await _use_case(info).sign_parts(info.context.caller, upload_id, key, part_numbers)
        return [SignedPart(part_number=s.part_number, url=s.url, expires_at=s.expires_at) for s in signed]

    @strawberry.mutation(description="The parts already in storage, to resume an upload after a reload or elsewhere.")
    async def multipart_upload_list_parts(self, info: Info, upload_id: str, key: str) -> list[UploadedPart]:
        parts = await _use_case(info).list_parts(info.context.caller, upload_id, key)
        return [UploadedPart(part_number=p.part_number, etag=p.etag, size=BigInt(p.size)) for p in parts]

    @strawberry.mutation(description="Assemble the parts; then save the result's url with record_create.")
    async def multipart_upload_complete(
        self, info: Info, upload_id: str, key: str, parts: list[CompletedPartInput]
    ) -> CompletedUpload:
        done = await _use_case(info).complete(
            info.context.caller, upload_id, key, [(p.part_number, p.etag) for p in parts]
        )
        return CompletedUpload(key=done.key, url=done.url, size=BigInt(done.size))

    @strawberry.mutation(description="Abort the upload and delete its parts.")
    async def multipart_upload_abort(self, info: Info, upload_id: str, key: str) -> bool:
        return await _use_case(info).abort(info.context.caller, upload_id, key)
