"""Pure: what the first bytes of a file really are, to catch type spoofing at confirm."""

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
