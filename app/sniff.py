"""Pure: what the first bytes of a file really are, to catch type spoofing at save and to find the
type of a file that storage holds without one (a form posted without a Content-Type field)."""

from __future__ import annotations

import re

SNIFF_BYTES = 512

_MARKUP = re.compile(rb"^\s*(<\?xml|<!doctype\s+html|<html|<svg|<script|<head|<body|<iframe|<!--)", re.I)


def sniff(head: bytes) -> str | None:
    """The media type the bytes carry, for the formats we check; None when unknown."""
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[4:8] == b"ftyp" and head[8:12] in (b"avif", b"avis"):
        return "image/avif"
    if head[4:8] == b"ftyp" and head[8:12] in (b"heic", b"heix", b"mif1", b"msf1"):
        return "image/heic"
    if head[4:8] == b"ftyp" and head[8:10] == b"qt":
        return "video/quicktime"
    if head[4:8] == b"ftyp":
        return "video/mp4"  # ISO base media (mp4, m4v, 3gp); avif and heic are told apart above
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "video/webm"  # EBML: webm and mkv
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "audio/wav"
    if head.startswith(b"ID3") or head[:2] in (b"\xff\xfb", b"\xff\xf3", b"\xff\xf2"):
        return "audio/mpeg"
    if head.startswith(b"OggS"):
        return "audio/ogg"
    if head.startswith(b"\x1f\x8b"):
        return "application/gzip"
    if head.startswith(b"{\\rtf"):
        return "application/rtf"
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    if head.startswith(b"PK\x03\x04"):
        return "application/zip"  # also docx/xlsx/odt: zip containers
    if head.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"):
        return "application/x-ole-storage"  # legacy .doc/.xls
    text = head.lstrip(b"\xef\xbb\xbf")
    if _MARKUP.match(text):
        return "image/svg+xml" if re.search(rb"<svg[\s>]", text, re.I) else "text/html"
    return None


# The formats a declared type must prove with its first bytes; others are only checked for markup.
_EXPECTED: dict[str, tuple[str, ...]] = {
    "image/jpeg": ("image/jpeg",),
    "image/png": ("image/png",),
    "image/gif": ("image/gif",),
    "image/webp": ("image/webp",),
    "image/avif": ("image/avif", "image/heic"),
    "image/svg+xml": ("image/svg+xml",),
    "application/pdf": ("application/pdf",),
    "application/msword": ("application/x-ole-storage",),
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": ("application/zip",),
}


def content_matches(declared: str, head: bytes, *, inline: bool) -> bool:
    """True when the bytes plausibly are `declared`: known formats must match their magic number,
    and nothing served inline as passive may really be markup a browser would run."""
    found = sniff(head)
    expected = _EXPECTED.get(declared)
    if expected is not None:
        return found in expected
    if inline and found in ("text/html", "image/svg+xml"):
        return declared in ("text/html", "application/xhtml+xml", "image/svg+xml", "text/xml", "application/xml")
    return True


# Stored types that say nothing: what S3 (binary/octet-stream) or a browser (application/octet-stream)
# record for a file whose type nobody gave.
GENERIC_TYPES = frozenset({"", "binary/octet-stream", "application/octet-stream"})
# Formats that share a container (zip, OLE): the file name's extension tells which one it is. A zip
# called .docx is no more dangerous than any zip, so the name may choose among them.
_IN_CONTAINER = {
    "application/zip": {
        "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        "odt": "application/vnd.oasis.opendocument.text",
        "ods": "application/vnd.oasis.opendocument.spreadsheet",
        "odp": "application/vnd.oasis.opendocument.presentation",
        "epub": "application/epub+zip",
    },
    "application/x-ole-storage": {
        "doc": "application/msword",
        "xls": "application/vnd.ms-excel",
        "ppt": "application/vnd.ms-powerpoint",
    },
}
# Text formats without a magic number, known by their extension when the bytes are no markup.
_TEXT_BY_EXTENSION = {"txt": "text/plain", "csv": "text/csv", "md": "text/markdown", "json": "application/json"}


def detect(head: bytes, file_name: str | None) -> str | None:
    """The media type of a file from its first bytes (and, where the bytes leave a choice, its name);
    None when neither tells. A name never gives a type whose format has a magic number of its own:
    such a file would have shown it."""
    found = sniff(head)
    extension = file_name.rsplit(".", 1)[-1].lower() if file_name and "." in file_name else ""
    if found in _IN_CONTAINER:
        return _IN_CONTAINER[found].get(extension, found)
    if found is not None:
        return found
    text = _TEXT_BY_EXTENSION.get(extension)
    if text is not None and b"\0" not in head:
        return text
    return None
