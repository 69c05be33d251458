"""Pure: platformOS's `value_upload` (its `ValueUploadInput`) as a domain value, and what the server
makes of one before storage sees anything: the bytes of `content`, the property's limits narrowed by
the client's options, the file's name and the type its quarantined object is stored with.

platformOS's three types, and what `content` holds for each here:
- `plain`: the file's text, as it is ("without any processing"), stored as UTF-8; what pos-modules
  send for a CSV export.
- `pdf`: HTML, which the server renders into a PDF (platformOS's PDF guide); or the PDF itself as a
  `data:` URI or base64, which no HTML can be mistaken for.
- `image`: the image's bytes as a `data:` URI (`data:image/png;base64,…`, what a browser's
  FileReader and canvas give) or plain base64. A GraphQL string cannot carry raw bytes.
The media type a `data:` URI names is not used: a file's type always comes from its bytes.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, replace
from email.message import Message
from urllib.parse import unquote_to_bytes

from app.errors import BadUserInput, Forbidden
from app.keys import sanitize_file_name
from app.policy import ClientOptions, UploadLimits, narrow, narrow_cache_control, normalize_media_type
from app.sniff import detect
from app.tables import UploadOptions

TYPES = ("image", "pdf", "plain")
PDF = "application/pdf"
OCTET_STREAM = "application/octet-stream"
MAX_FILE_PATH = 1024
# The extension a file named after its property gets, by its type.
EXTENSIONS = {
    "image/jpeg": "jpg",
    "image/png": "png",
    "image/gif": "gif",
    "image/webp": "webp",
    "image/avif": "avif",
    "image/heic": "heic",
    "image/svg+xml": "svg",
    "application/pdf": "pdf",
    "text/plain": "txt",
    "text/csv": "csv",
    "text/markdown": "md",
    "text/html": "html",
    "application/json": "json",
    "application/xml": "xml",
    "text/xml": "xml",
    "application/zip": "zip",
    "application/gzip": "gz",
    "application/rtf": "rtf",
}


@dataclass(frozen=True)
class ValueUpload:
    """A file for the server to create and save into an upload property (platformOS's `ValueUploadInput`)."""

    type: str  # one of TYPES
    content: str | None = None
    remote_url: str | None = None  # takes precedence over content, as platformOS has it
    file_path: str | None = None  # the file's name here (keys are the server's: its last segment)
    acl: str | None = None  # None: private, platformOS's default
    content_type: str | None = None
    content_disposition: str | None = None  # a whole header value, e.g. "attachment; filename=a.csv"
    cache_control: str | None = None
    synchronous: bool = False  # accepted: the file is always made before the mutation answers

    def check(self) -> None:
        if self.type not in TYPES:
            raise BadUserInput(f"value_upload.type must be one of {', '.join(TYPES)}")
        if self.remote_url is None and self.content is None:
            raise BadUserInput("value_upload needs content (the file's data) or remote_url (where to fetch it)")
        if self.remote_url is None and self.content == "":
            raise BadUserInput("value_upload.content is empty; give the file's data")


@dataclass(frozen=True)
class Html:
    """The content of a `type: pdf` value_upload that is HTML, to be rendered into the PDF."""

    text: str


def content_of(spec: ValueUpload) -> bytes | Html:
    """The file `content` stands for (see the module docstring), or BadUserInput saying why not."""
    assert spec.content is not None
    if spec.type == "plain":
        return _utf8(spec.content)
    if spec.type == "image":
        return _binary(spec.content)
    # pdf: HTML has a "<"; base64 and a data: URI's header have none.
    text = spec.content.strip()
    if text[:5].lower() == "data:":
        return _binary(text)
    if "<" not in text:
        try:
            data = _base64(text)
        except BadUserInput:
            data = b""
        if data.startswith(b"%PDF-"):
            return data
    return Html(spec.content)


def _utf8(text: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        raise BadUserInput("value_upload.content is not valid Unicode text (it holds a lone surrogate)") from None


def _binary(content: str) -> bytes:
    text = content.strip()
    if text[:5].lower() == "data:":
        header, comma, data = text[5:].partition(",")
        if not comma:
            raise BadUserInput("value_upload.content is a data: URI without its comma (data:<type>;base64,<data>)")
        if "base64" in (param.strip().lower() for param in header.split(";")[1:]):
            return _base64(data)
        decoded = unquote_to_bytes(data)
        if not decoded:
            raise BadUserInput("value_upload.content is a data: URI that holds no bytes")
        return decoded
    return _base64(text)


def _base64(text: str) -> bytes:
    """Standard or URL-safe base64, padding optional, whitespace (MIME line breaks) ignored."""
    compact = "".join(text.split())
    if "-" in compact or "_" in compact:
        compact = compact.translate(str.maketrans("-_", "+/"))
    compact += "=" * (-len(compact) % 4)
    try:
        data = base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        raise BadUserInput(
            "value_upload.content must be the file's bytes as base64 or a data: URI "
            "(data:image/png;base64,...); it is neither"
        ) from None
    if not data:
        raise BadUserInput("value_upload.content holds no bytes")
    return data


def disposition_of(spec: ValueUpload) -> tuple[str | None, str | None]:
    """`content_disposition` as (inline | attachment, file name or None); (None, None) when not given."""
    if spec.content_disposition is None or not spec.content_disposition.strip():
        return None, None
    value = spec.content_disposition.strip()
    if len(value) > 1024 or not value.isprintable():
        raise BadUserInput("value_upload.content_disposition must be one printable header value (at most 1024 chars)")
    header = Message()
    header["Content-Disposition"] = value
    kind = header.get_content_disposition()
    if kind not in ("inline", "attachment"):
        raise BadUserInput(
            f"value_upload.content_disposition {value[:100]!r} must be inline or attachment "
            '(optionally with a file name: attachment; filename="report.csv")'
        )
    name = header.get_filename()
    return kind, name if isinstance(name, str) and name.strip() else None


def limits_for(options: UploadOptions, spec: ValueUpload, disposition: str | None) -> UploadLimits:
    """The property's limits narrowed by the client's options, exactly as a presign's are, plus what
    the type implies: an image must be an image, a pdf a PDF."""
    if spec.acl not in (None, "private", "public"):
        raise BadUserInput("value_upload.acl must be private or public")
    acl = spec.acl or "private"
    if acl == "public" and options.acl == "private":
        raise Forbidden("this property's files are private; value_upload cannot make one public (leave acl out)")
    content_type = spec.content_type.strip() if spec.content_type and spec.content_type.strip() else None
    if spec.type == "pdf":
        if content_type is not None and normalize_media_type(content_type) != PDF:
            raise BadUserInput("type: pdf makes a PDF; content_type must be application/pdf or left out")
        content_type = PDF
    client = ClientOptions(
        content_type=content_type,
        content_type_starts_with="image/" if spec.type == "image" else None,
        content_disposition=disposition,
        acl=acl,
    )
    limits = narrow(options, client)
    if spec.type == "image" and not limits.content_types and limits.declared_content_type is None:
        limits = replace(limits, content_types=("image/*",))
    return replace(limits, cache_control=narrow_cache_control(options.cache_control, spec.cache_control))


def given_name(spec: ValueUpload, disposition_name: str | None, source_name: str | None) -> str | None:
    """The file's name when the client (file_path, a disposition's filename) or the source (the
    remote URL's last segment) gives one; keys are the server's, so only a name, never a path."""
    if spec.file_path is not None:
        if not spec.file_path.strip() or len(spec.file_path) > MAX_FILE_PATH:
            raise BadUserInput(f"value_upload.file_path must be a non-empty name of at most {MAX_FILE_PATH} characters")
        return sanitize_file_name(spec.file_path)
    for name in (disposition_name, source_name):
        if name and name.strip():
            return sanitize_file_name(name)
    return None


def stored_type(spec: ValueUpload, limits: UploadLimits, head: bytes, file_name: str | None) -> str:
    """The type the quarantined object is stored with; the save checks it against the bytes and the
    allowlist as for any upload. A declared type stands (the save proves it); otherwise what the bytes
    show, and text for plain content that shows nothing else."""
    if limits.declared_content_type:
        return limits.declared_content_type
    found = detect(head, file_name)
    if found:
        return found
    return "text/plain" if spec.type == "plain" else OCTET_STREAM


def default_name(prop: str, content_type: str) -> str:
    """platformOS names a created file after its property (`the_upload.pdf`)."""
    extension = EXTENSIONS.get(content_type)
    return f"{prop}.{extension}" if extension else prop
