"""Pure: what a presign may allow (property limits narrowed by client options) and what it must sign."""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from app.errors import BadUserInput, ContentTypeNotAllowed, Forbidden, UploadTooLarge, UploadTooSmall
from app.tables import KIB, SINGLE_UPLOAD_MAX, UploadOptions, content_type_matches, is_active_content

_MEDIA_TYPE = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]{0,126}/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}$")
S3_ACL = {"public": "public-read", "private": "private"}


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
        if client.acl not in S3_ACL:
            raise BadUserInput(f"acl {client.acl!r} must be public or private")
        if client.acl == "public" and options.acl == "private":
            raise Forbidden("this property is private; a presign may not make its files public")
        acl = client.acl

    disposition = options.content_disposition
    if client.content_disposition is not None:
        if client.content_disposition not in ("inline", "attachment"):
            raise BadUserInput(f"content_disposition {client.content_disposition!r} must be inline or attachment")
        disposition = client.content_disposition
    # Active content (SVG, HTML, scripts) is never served inline from the bucket's origin: when the
    # exact type is unknown and could be active, the file is signed as an attachment.
    if declared is not None and is_active_content(declared):
        disposition = "attachment"
    elif declared is None and options.may_be_active():
        disposition = "attachment"
    return UploadLimits(min_size, max_size, types, declared, prefix, acl, disposition, options.cache_control)


def disposition_header(disposition: str, file_name: str | None) -> str:
    """RFC 6266 header: an ASCII fallback name plus the exact UTF-8 one."""
    if not file_name:
        return disposition
    ascii_name = file_name.encode("ascii", "replace").decode().replace("?", "_").replace('"', "_")
    utf8_name = quote(file_name, safe="")
    if ascii_name == file_name:
        return f'{disposition}; filename="{ascii_name}"'
    return f"{disposition}; filename=\"{ascii_name}\"; filename*=UTF-8''{utf8_name}"


def post_fields_and_conditions(
    limits: UploadLimits, file_name: str | None, *, include_content_type: bool = True
) -> tuple[dict[str, str], list[Any]]:
    """Form fields and policy conditions for a SigV4 POST. The key condition is added by the SDK.

    With an exact type, `Content-Type` is signed as is. Otherwise, with `include_content_type`, the
    payload carries an empty `Content-Type` for the client to fill with the file's type (constrained
    by starts-with); without it, no type is sent and storage records binary/octet-stream.
    """
    fields: dict[str, str] = {
        "acl": S3_ACL[limits.acl],
        "success_action_status": "201",
        "Content-Disposition": disposition_header(limits.disposition, file_name),
    }
    conditions: list[Any] = [
        {"acl": fields["acl"]},
        {"success_action_status": "201"},
        {"Content-Disposition": fields["Content-Disposition"]},
        ["content-length-range", limits.min_size, limits.max_size],
    ]
    if limits.cache_control:
        fields["Cache-Control"] = limits.cache_control
        conditions.append({"Cache-Control": limits.cache_control})
    if limits.declared_content_type:
        fields["Content-Type"] = limits.declared_content_type
        conditions.append({"Content-Type": limits.declared_content_type})
    elif include_content_type:
        fields["Content-Type"] = ""
        conditions.append(["starts-with", "$Content-Type", limits.type_prefix])
    elif limits.content_types:
        raise BadUserInput(
            f"this property accepts only {', '.join(limits.content_types)}: pass include_content_type: true "
            "(and send the file's type as Content-Type) or name the type in presign_url.content_type"
        )
    return fields, conditions


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


def put_headers(limits: UploadLimits, file_name: str, size: int, checksum_sha256: str | None) -> dict[str, str]:
    """Every header a presigned PUT signs, hence every header the client must send as is: the
    exact type and length, and the object's ACL, disposition and caching."""
    assert limits.declared_content_type is not None, "a PUT always signs an exact type"
    headers = {
        "Content-Type": limits.declared_content_type,
        "Content-Length": str(size),
        "Content-Disposition": disposition_header(limits.disposition, file_name),
        "x-amz-acl": S3_ACL[limits.acl],
    }
    if limits.cache_control:
        headers["Cache-Control"] = limits.cache_control
    if checksum_sha256:
        headers["x-amz-checksum-sha256"] = checksum_sha256
    return headers
