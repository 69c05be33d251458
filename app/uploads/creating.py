"""Creating files server-side: platformOS's `value_upload`, from `content` or `remote_url`.

A created file goes the way of any upload, only with the server as its client: an upload is issued
for the property under the caller's presign rate and pending cap, with the property's limits
narrowed by the client's options; the server writes the bytes to its quarantine key
(`cache/<table>/<property>/<token>/<file name>`); the record's save then verifies the object (size,
allowlist, the type its bytes show) and promotes it like any other (app/uploads/saving.py).

    async with uploads.creating(caller, tdef, specs) as created:     # property -> quarantine key
        async with uploads.saving(caller, tdef, {**files, **created}, record_id) as verified:
            ...

A save that fails anywhere leaves nothing behind: the uploads it created are claimed back (`issued`
-> `expiring`), their objects deleted, and they end `expired`; if storage is down then, the sweep
finishes the deletion. An upload the save attached is never touched.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Protocol

from app.errors import StorageUnavailable
from app.keys import key_prefix, new_token, quarantine_key
from app.models import Upload
from app.policy import QUARANTINE_DISPOSITION, check_declared_size
from app.remote_hosts import Fetched
from app.sniff import SNIFF_BYTES
from app.storage.base import ObjectHeaders, Storage
from app.tables import PropertyDef, TableDef
from app.uploads.issuing import Issuing
from app.uploads.status import UploadStatus
from app.uploads.values import Caller
from app.value_upload import Html, ValueUpload, content_of, default_name, disposition_of, given_name, limits_for
from app.value_upload import stored_type as type_to_store

log = logging.getLogger(__name__)


class RemoteFiles(Protocol):
    async def fetch(self, url: str, limit: int) -> Fetched:
        """The file at `url` (at most `limit` bytes), if the server may fetch from there (app/remote_fetch.py)."""


class PdfRenderer(Protocol):
    async def render(self, html: str) -> bytes:
        """A PDF of `html`, with nothing fetched from outside (app/pdf.py)."""


@dataclass(frozen=True)
class Created:
    upload_id: int
    key: str  # permanent; the object is at its quarantine key until the save promotes it

    @property
    def quarantine_key(self) -> str:
        return quarantine_key(self.key)


class Creating:
    def __init__(self, issuing: Issuing, storage: Storage, remote: RemoteFiles, pdf: PdfRenderer) -> None:
        self.issuing = issuing
        self.storage = storage
        self.remote = remote
        self.pdf = pdf

    @asynccontextmanager
    async def creating(
        self, caller: Caller, tdef: TableDef, specs: Mapping[str, ValueUpload]
    ) -> AsyncIterator[dict[str, str]]:
        """Create the files of `specs` (property name -> value_upload) in quarantine; the body saves
        their keys like uploaded files. See the module docstring."""
        made: list[Created] = []
        try:
            keys: dict[str, str] = {}
            for name, spec in specs.items():
                created = await self.create(caller, tdef, tdef.properties[name], spec)
                made.append(created)
                keys[name] = created.quarantine_key
            yield keys
        except BaseException:
            await self.abandon(made)
            raise

    async def create(self, caller: Caller, tdef: TableDef, pdef: PropertyDef, spec: ValueUpload) -> Created:
        """One file in quarantine, with its issued upload; refused before anything is stored when
        the input is malformed or over the limits."""
        disposition, disposition_name = disposition_of(spec)
        limits = limits_for(pdef.upload_options(), spec, disposition)
        source_name: str | None = None
        content = content_of(spec) if spec.remote_url is None else None
        if isinstance(content, bytes):
            check_declared_size(limits, len(content))
        # Fetching and rendering cost more than a presign: they come after the caller's rate.
        await self.issuing.take_quota(caller)
        if spec.remote_url is not None:
            fetched = await self.remote.fetch(spec.remote_url, limits.max_size)
            data, source_name = fetched.data, fetched.file_name
        elif isinstance(content, Html):
            data = await self.pdf.render(content.text)
        else:
            assert content is not None
            data = content
        check_declared_size(limits, len(data))
        file_name = given_name(spec, disposition_name, source_name)
        content_type = type_to_store(spec, limits, data[:SNIFF_BYTES], file_name)
        file_name = file_name or default_name(pdef.name, content_type)
        token = new_token()
        key = key_prefix(tdef.name, pdef.name, token) + file_name
        upload_id = await self.issuing.record(
            caller,
            tdef.name,
            pdef.name,
            token,
            "value_upload",
            key,
            limits,
            self.issuing.expiry(),
            file_name,
            declared_size=len(data),
        )
        created = Created(upload_id, key)
        try:
            await self.storage.put(
                created.quarantine_key,
                data,
                ObjectHeaders(content_type=content_type, content_disposition=QUARANTINE_DISPOSITION),
            )
        except BaseException:
            await self.abandon([created])
            raise
        return created

    async def abandon(self, made: Sequence[Created]) -> None:
        """Undo created uploads a save did not attach: claim each back from `issued`, delete its
        objects (the quarantined one, and a promoted copy a failed save may have left), mark it
        `expired`. Never raises: what it cannot finish, the sweep does."""
        for created in made:
            try:
                claimed = await Upload.filter(id=created.upload_id, status=UploadStatus.ISSUED).update(
                    status=UploadStatus.EXPIRING
                )
                if not claimed:
                    continue
                await self.storage.delete([created.quarantine_key, created.key])
                await Upload.filter(id=created.upload_id, status=UploadStatus.EXPIRING).update(
                    status=UploadStatus.EXPIRED
                )
            except StorageUnavailable:
                log.warning("could not delete the objects of created upload %s now; the sweep will", created.upload_id)
            except Exception:
                log.exception("could not undo created upload %s; the sweep removes it later", created.upload_id)
