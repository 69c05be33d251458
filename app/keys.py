"""Pure: object key naming and file name sanitizing.

Keys are always server-made. A client only ever writes to a quarantine key,
`cache/<table>/<property>/<token>/<file name>`; once the server has verified the object it promotes it
to its permanent key, the same without `cache/`, and serves that one. Versions live next to the
permanent object, under `<table>/<property>/<token>/versions/`. The token is 128 random bits issued
with the presign; the client's file name is only ever the last segment, sanitized.
"""

from __future__ import annotations

import re
import secrets
import unicodedata
from dataclasses import dataclass

from app.errors import ForeignUpload
from app.tables import RESERVED_TABLE

QUARANTINE = RESERVED_TABLE + "/"
MAX_FILE_NAME_BYTES = 180
_TOKEN = re.compile(r"^[0-9a-f]{32}$")
# Characters that are legal in S3 keys but break URLs, headers or shells downstream.
_UNSAFE = re.compile(r'[\\/"<>|:*?#%{}^`\[\]]')


def new_token() -> str:
    return secrets.token_hex(16)


def key_prefix(table: str, prop: str, token: str) -> str:
    """Where an upload's permanent object and its versions live."""
    return f"{table}/{prop}/{token}/"


def quarantine_prefix(table: str, prop: str, token: str) -> str:
    """Where a client may write an upload (and nowhere else)."""
    return QUARANTINE + key_prefix(table, prop, token)


def permanent_key(quarantine_key: str) -> str:
    """The key a verified quarantine object is promoted to."""
    if not quarantine_key.startswith(QUARANTINE):
        raise ValueError(f"{quarantine_key!r} is not a quarantine key")
    return quarantine_key[len(QUARANTINE) :]


def quarantine_key(permanent: str) -> str:
    return QUARANTINE + permanent


def sanitize_file_name(name: str) -> str:
    """Keep a readable, unicode file name that can never act as a path or break a header.

    Directory parts (either slash) are dropped, control/format characters removed, unsafe punctuation
    replaced, leading dots stripped (no hidden files, no `..`), and the UTF-8 length capped while
    keeping the extension. An empty result becomes `file`.
    """
    name = unicodedata.normalize("NFC", name)
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C")
    name = _UNSAFE.sub("_", name)
    name = re.sub(r"\s+", " ", name).strip().lstrip(".").strip()
    name = re.sub(r"\.{2,}", ".", name).rstrip(". ")
    if not name:
        return "file"
    if len(name.encode()) > MAX_FILE_NAME_BYTES:
        stem, dot, ext = name.rpartition(".")
        ext = ext if dot and 0 < len(ext.encode()) <= 16 else ""
        stem = stem if ext else name
        budget = MAX_FILE_NAME_BYTES - (len(ext.encode()) + 1 if ext else 0)
        stem = stem.encode()[:budget].decode(errors="ignore").rstrip(". ")
        name = f"{stem}.{ext}" if ext else stem
    return name or "file"


def extension_of(file_name: str | None) -> str | None:
    if not file_name or "." not in file_name:
        return None
    ext = file_name.rsplit(".", 1)[1].lower()
    return ext if ext and len(ext) <= 16 and ext.isalnum() else None


@dataclass(frozen=True)
class ParsedKey:
    table: str
    prop: str
    token: str
    file_name: str
    quarantined: bool  # the key was given in its quarantine form

    @property
    def permanent(self) -> str:
        return f"{key_prefix(self.table, self.prop, self.token)}{self.file_name}"

    @property
    def quarantine(self) -> str:
        return QUARANTINE + self.permanent

    @property
    def key(self) -> str:
        """The key as it was given."""
        return self.quarantine if self.quarantined else self.permanent


def parse_key(key: str) -> ParsedKey:
    """Split one of our keys (quarantine or permanent form) into its parts; anything else is foreign."""
    quarantined = key.startswith(QUARANTINE)
    parts = key[len(QUARANTINE) :].split("/") if quarantined else key.split("/")
    if len(parts) != 4 or not _TOKEN.match(parts[2]) or not parts[3] or parts[3] in (".", ".."):
        raise ForeignUpload(
            "this key was not issued by this server (expected cache/<table>/<property>/<token>/<file name>)"
        )
    return ParsedKey(parts[0], parts[1], parts[2], parts[3], quarantined)
