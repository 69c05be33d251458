"""Pure: object key naming, file name sanitizing, and turning a client's URL back into a key.

Keys are always server-made: `<table>/<property>/<token>/<file name>`, where the token is 128 random
bits issued with the presign. The client's file name is only ever the last segment, sanitized.
"""

from __future__ import annotations

import re
import secrets
import unicodedata
from dataclasses import dataclass
from urllib.parse import quote, unquote, unquote_plus, urlsplit

from app.errors import BadUserInput, ForeignUpload

FILENAME_VAR = "${filename}"
MAX_FILE_NAME_BYTES = 180
_TOKEN = re.compile(r"^[0-9a-f]{32}$")
# Characters that are legal in S3 keys but break URLs, headers or shells downstream.
_UNSAFE = re.compile(r'[\\/"<>|:*?#%{}^`\[\]]')


def new_token() -> str:
    return secrets.token_hex(16)


def key_prefix(table: str, prop: str, token: str) -> str:
    return f"{table}/{prop}/{token}/"


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

    @property
    def key(self) -> str:
        return f"{key_prefix(self.table, self.prop, self.token)}{self.file_name}"


def parse_key(key: str) -> ParsedKey:
    """Split a key into its parts; anything not shaped like one of our keys is foreign."""
    parts = key.split("/")
    if len(parts) != 4 or not _TOKEN.match(parts[2]) or not parts[3] or parts[3] in (".", ".."):
        raise ForeignUpload("this key was not issued by this server (expected <table>/<property>/<token>/<file name>)")
    return ParsedKey(parts[0], parts[1], parts[2], parts[3])


def _host_port(scheme: str, netloc: str) -> str:
    host = netloc.rsplit("@", 1)[-1].lower()
    default = ":443" if scheme == "https" else ":80"
    return host[: -len(default)] if host.endswith(default) else host


@dataclass(frozen=True)
class StorageUrls:
    """Where objects of our bucket live, in every URL form a client may hand back."""

    bucket: str
    region: str
    endpoint_url: str | None  # custom S3-compatible endpoint (MinIO, R2, moto), path-style
    public_url: str | None = None  # endpoint as browsers reach it, when it differs
    cdn_base_url: str | None = None

    def storage_base(self) -> str:
        """Base URL (no trailing slash) for public objects straight from storage."""
        if self.public_url:
            return f"{self.public_url}/{self.bucket}"
        if self.endpoint_url:
            return f"{self.endpoint_url}/{self.bucket}"
        return f"https://{self.bucket}.s3.{self.region}.amazonaws.com"

    def upload_url(self) -> str:
        """Where a browser POSTs the form: the bucket URL."""
        return self.storage_base() + "/"

    def public_object_url(self, key: str) -> str:
        base = self.cdn_base_url or self.storage_base()
        return f"{base}/{quote(key, safe='/~')}"

    def _prefixes(self) -> list[tuple[str, str]]:
        """(host[:port], path prefix) pairs under which a key follows."""
        out: list[tuple[str, str]] = []
        for base in (self.cdn_base_url, self.public_url and f"{self.public_url}/{self.bucket}"):
            if base:
                parts = urlsplit(base)
                out.append((_host_port(parts.scheme, parts.netloc), parts.path.rstrip("/") + "/"))
        if self.endpoint_url:
            parts = urlsplit(self.endpoint_url)
            host = _host_port(parts.scheme, parts.netloc)
            path = parts.path.rstrip("/")
            out += [(host, f"{path}/{self.bucket}/"), (f"{self.bucket}.{host}", f"{path}/")]
        else:
            b, r = self.bucket, self.region
            for host in (f"s3.{r}.amazonaws.com", "s3.amazonaws.com", f"s3-{r}.amazonaws.com"):
                out += [(host, f"/{b}/"), (f"{b}.{host}", "/")]
        return out

    def key_from_value(self, value: str) -> str:
        """The object key from a URL in any form we or S3 publish (path-style, virtual-hosted, CDN,
        percent-encoded or not, S3's POST Location) or from a bare key; the likelier reading when
        a `+` makes the URL ambiguous (see key_candidates). A URL elsewhere is FOREIGN_UPLOAD."""
        return self.key_candidates(value)[0]

    def key_candidates(self, value: str) -> list[str]:
        """Every key the value can mean, likeliest first: one, or two when a URL's path holds a
        `+`. S3's POST <Location> is form-encoded (`+` for a space, `%2B` for a plus, `/` as
        `%2F`), while a URL written from the raw key keeps a plus as it is. A bare key is literal."""
        value = value.strip()
        if not value:
            raise BadUserInput("the upload value is empty: pass the uploaded file's URL or key")
        if len(value) > 4096:
            raise BadUserInput("the upload value is longer than 4096 characters")
        if any(unicodedata.category(ch) == "Cc" for ch in value):
            raise BadUserInput("the upload value contains control characters")
        if "://" not in value:
            parse_key(value)
            return [value]
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ForeignUpload("only http(s) URLs of this server's storage are accepted")
        host = _host_port(parts.scheme, parts.netloc)
        matched = [p for h, p in self._prefixes() if h == host and parts.path.startswith(p)]
        if not matched:
            raise ForeignUpload(f"{host} is not this server's storage or CDN; upload through a presigned URL first")
        path = parts.path[len(max(matched, key=len)) :]
        try:
            readings = [unquote(path, errors="strict")]
            if "+" in path:
                plus_is_space = unquote_plus(path, errors="strict")
                form_encoded = "%2f" in path.lower()
                readings.insert(0 if form_encoded else 1, plus_is_space)
        except UnicodeDecodeError:
            raise BadUserInput("the URL's path is not valid percent-encoded UTF-8") from None
        keys: list[str] = []
        for key in readings:
            try:
                parse_key(key)
            except ForeignUpload:
                continue
            keys.append(key)
        if not keys:
            parse_key(readings[0])  # raises with the reason
        return keys
