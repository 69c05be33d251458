"""Pure: what a presign may allow (property limits narrowed by client options), as backend-neutral
`UploadGrant`s that a storage adapter signs."""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from urllib.parse import quote

from app.errors import BadUserInput, ContentTypeNotAllowed, Forbidden, UploadTooLarge, UploadTooSmall
from app.storage.base import UploadGrant
from app.tables import KIB, SINGLE_UPLOAD_MAX, UploadOptions, content_type_matches, is_active_content

_MEDIA_TYPE = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]{0,126}/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}$")
ACLS = ("public", "private")
# A quarantined object is never served; should it ever be opened, a browser saves it instead of rendering it.
QUARANTINE_DISPOSITION = "attachment"


@dataclass(frozen=True)
class ClientOptions:
    """What a client asked for; every field optional, every field may only narrow."""

    min_kib: int | None = None
    max_kib: int | None = None
    content_type: str | None = None
    content_type_starts_with: str | None = None
    content_disposition: str | None = None
    acl: str | None = None


@dataclass(frozen=True)
class UploadLimits:
    """The effective limits of one presigned upload; stored with it and re-checked at confirm."""

    min_size: int
    max_size: int
    content_types: tuple[str, ...]  # () admits any
    declared_content_type: str | None  # exact type signed into the policy
    type_prefix: str  # starts-with condition when no exact type is signed
    acl: str  # public | private
    disposition: str  # inline | attachment
    cache_control: str | None

    def allows(self, content_type: str) -> bool:
        if self.declared_content_type is not None:
            return content_type.split(";", 1)[0].strip().lower() == self.declared_content_type
        return not self.content_types or any(content_type_matches(content_type, p) for p in self.content_types)


def normalize_media_type(value: str, what: str = "content_type") -> str:
    media = value.split(";", 1)[0].strip().lower()
    if not _MEDIA_TYPE.match(media):
        raise BadUserInput(f"{what} {value[:100]!r} is not a media type such as image/png")
    return media


def _common_prefix(types: tuple[str, ...]) -> str:
    """The longest `type/` family all allowed types share, for the policy's starts-with."""
    families = {t.split("/", 1)[0] + "/" for t in types}
    return families.pop() if types and len(families) == 1 else ""


def narrow(options: UploadOptions, client: ClientOptions, *, max_allowed: int = SINGLE_UPLOAD_MAX) -> UploadLimits:
    """Apply client options to a property's limits. Sizes are clamped into the property's range;
    a type or disposition outside what the property allows is an error, never a widening."""
    for label, kib in (("gte", client.min_kib), ("lte", client.max_kib)):
        if kib is not None and kib < 0:
            raise BadUserInput(f"content_length.{label} must be zero or more (KiB), got {kib}")
    ceiling = min(options.max_size if options.max_size is not None else max_allowed, max_allowed)
    min_size = max(options.min_size, (client.min_kib or 0) * KIB)
    max_size = ceiling if client.max_kib is None else min(ceiling, client.max_kib * KIB)
    if min_size > max_size:
        raise BadUserInput(
            f"content_length range is empty: at least {min_size} bytes but at most {max_size} bytes "
            f"(the property allows {options.min_size}..{ceiling} bytes)"
        )

    declared: str | None = None
    types = options.content_types
    if client.content_type:
        declared = normalize_media_type(client.content_type)
        if not options.allows(declared):
            raise ContentTypeNotAllowed(
                f"content type {declared} is not allowed here; allowed: {', '.join(options.content_types)}"
            )
    prefix = ""
    if client.content_type_starts_with is not None:
        prefix = client.content_type_starts_with.strip().lower()
        if len(prefix) > 127 or not re.fullmatch(r"[a-z0-9!#$&^_.+/-]*", prefix):
            raise BadUserInput(f"content_type.starts_with {prefix[:100]!r} is not a media type prefix")
        if declared and not declared.startswith(prefix):
            raise BadUserInput(f"content_type {declared} does not start with {prefix!r}")
        if types:
            types = tuple(t for t in types if t.startswith(prefix) or prefix.startswith(t.rstrip("*")))
            if not types:
                raise ContentTypeNotAllowed(
                    f"no allowed type starts with {prefix!r}; allowed: {', '.join(options.content_types)}"
                )
    if not prefix:
        prefix = _common_prefix(types)

    acl = options.acl
    if client.acl is not None:
        if client.acl not in ACLS:
            raise BadUserInput(f"acl {client.acl!r} must be public or private")
        if client.acl == "public" and options.acl == "private":
            raise Forbidden("this property is private; a presign may not make its files public")
        acl = client.acl

    disposition = options.content_disposition
    if client.content_disposition is not None:
        if client.content_disposition not in ("inline", "attachment"):
            raise BadUserInput(f"content_disposition {client.content_disposition!r} must be inline or attachment")
        disposition = client.content_disposition
    # Active content (SVG, HTML, scripts) is never served inline from the bucket's origin. A file's
    # type is known for sure once it is verified: its promotion applies this rule (served_disposition).
    if declared is not None and is_active_content(declared):
        disposition = "attachment"
    return UploadLimits(min_size, max_size, types, declared, prefix, acl, disposition, options.cache_control)


def served_disposition(disposition: str, content_type: str | None) -> str:
    """The disposition a stored file is served with: active content (HTML, SVG, scripts) never
    inline from the bucket's origin, whatever the property says."""
    return "attachment" if content_type is None or is_active_content(content_type) else disposition


def disposition_header(disposition: str, file_name: str | None) -> str:
    """RFC 6266 header: an ASCII fallback name plus the exact UTF-8 one."""
    if not file_name:
        return disposition
    ascii_name = file_name.encode("ascii", "replace").decode().replace("?", "_").replace('"', "_")
    utf8_name = quote(file_name, safe="")
    if ascii_name == file_name:
        return f'{disposition}; filename="{ascii_name}"'
    return f"{disposition}; filename=\"{ascii_name}\"; filename*=UTF-8''{utf8_name}"


def form_grant(limits: UploadLimits, key: str, expires_in: int, *, include_content_type: bool = True) -> UploadGrant:
    """What a form POST may store at `key` (a quarantine key, possibly ending in ${filename}).

    With an exact type, storage must record that type. Otherwise, with `include_content_type`, the
    client fills in the file's type (within the allowed family); without it, as platformOS clients
    post, no type is sent and storage records its default: the save then takes the real type from the
    bytes and the promotion stores it.
    """
    return UploadGrant(
        key=key,
        expires_in=expires_in,
        max_size=limits.max_size,
        min_size=limits.min_size,
        content_type=limits.declared_content_type,
        client_sets_content_type=limits.declared_content_type is None and include_content_type,
        content_type_prefix=limits.type_prefix,
        content_disposition=QUARANTINE_DISPOSITION,
    )


def open_put_grant(limits: UploadLimits, key: str, expires_in: int) -> UploadGrant:
    """A PUT for a form presign on storage without form POSTs (Azure): the client named no size, and
    maybe no type. The key is exact; the type is signed (sent as a header the client must keep) only
    when the client named one; otherwise the client sends its file's type, or none and the save takes
    it from the bytes. Size and type are the save's to check (a SAS binds neither), as for a POST."""
    return UploadGrant(
        key=key,
        expires_in=expires_in,
        max_size=limits.max_size,
        min_size=limits.min_size,
        content_type=limits.declared_content_type,
        content_disposition=QUARANTINE_DISPOSITION,
    )


def checked_checksum_sha256(value: str | None) -> str | None:
    """A client's SHA-256 as S3's `x-amz-checksum-sha256` wants it: base64 of the 32-byte digest."""
    if value is None:
        return None
    try:
        digest = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        digest = b""
    if len(digest) != 32:
        raise BadUserInput("checksum_sha256 must be the base64 of the file's 32-byte SHA-256 digest (44 characters)")
    return base64.b64encode(digest).decode()


def check_declared_size(limits: UploadLimits, size: int) -> None:
    """A size the client declares up front (PUT, multipart) must already fit the limits."""
    if size > limits.max_size:
        raise UploadTooLarge(f"the file is {size} bytes; the limit is {limits.max_size} bytes")
    if size < limits.min_size:
        raise UploadTooSmall(f"the file is {size} bytes; the minimum is {limits.min_size} bytes")


def put_grant(limits: UploadLimits, key: str, expires_in: int, size: int, checksum_sha256: str | None) -> UploadGrant:
    """What a presigned PUT signs: the exact type and length (and checksum) of one file."""
    assert limits.declared_content_type is not None, "a PUT always signs an exact type"
    return UploadGrant(
        key=key,
        expires_in=expires_in,
        max_size=size,
        min_size=size,
        content_type=limits.declared_content_type,
        size=size,
        checksum_sha256=checksum_sha256,
        content_disposition=QUARANTINE_DISPOSITION,
    )


# Cache-Control directives that only ever restrict caching (a client may always add them).
_RESTRICTIVE = ("private", "no-cache", "no-store", "must-revalidate", "proxy-revalidate", "no-transform")
_DIRECTIVE = re.compile(r"^([a-z-]{1,40})(?:=(\d{1,12}))?$")


def _directives(value: str, what: str) -> dict[str, int | None]:
    out: dict[str, int | None] = {}
    for part in value.lower().split(","):
        part = part.strip()
        if not part:
            continue
        match = _DIRECTIVE.match(part)
        if match is None:
            raise BadUserInput(f"{what} {value[:100]!r} is not a Cache-Control value such as 'max-age=3600, private'")
        out[match[1]] = int(match[2]) if match[2] is not None else None
    return out


def narrow_cache_control(own: str | None, client: str | None) -> str | None:
    """A client's Cache-Control, when it allows no more caching than the property's own: restrictive
    directives always; `public`, `immutable` and the stale-* ones only when the property has them;
    `max-age` and `s-maxage` no longer than the property's. The property's restrictive directives
    are kept whatever the client sends. Anything that would widen it is FORBIDDEN."""
    if client is None or not client.strip():
        return own
    if len(client) > 255:
        raise BadUserInput("cache_control is longer than 255 characters")
    asked = _directives(client, "cache_control")
    mine = _directives(own, "the property's cache_control") if own else {}
    for name, value in asked.items():
        if name in _RESTRICTIVE and value is None:
            continue
        limit = mine.get(name)
        if name == "s-maxage" and limit is None:
            limit = mine.get("max-age")
        if value is None and name in mine and limit is None:
            continue
        if value is not None and limit is not None and value <= limit:
            continue
        raise Forbidden(
            f"cache_control {name}{'' if value is None else f'={value}'} would allow more caching than this "
            f"property's own ({own or 'none'}); it may only narrow it"
        )
    kept = [f"{n}" for n, v in mine.items() if n in _RESTRICTIVE and v is None and n not in asked]
    return ", ".join([*(n if v is None else f"{n}={v}" for n, v in asked.items()), *kept])
