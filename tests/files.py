"""Small real files made in the tests."""

from __future__ import annotations

import io
import random

from PIL import Image


def _noise(mode: str, width: int, height: int) -> Image.Image:
    # Noise does not compress, so even small test images pass the example tables' 1 KiB minimum.
    return Image.frombytes(mode, (width, height), random.Random(width * height).randbytes(width * height * len(mode)))


def png(width: int = 64, height: int = 48) -> bytes:
    out = io.BytesIO()
    _noise("RGBA", width, height).save(out, "PNG")
    return out.getvalue()


def jpeg(width: int = 64, height: int = 48) -> bytes:
    out = io.BytesIO()
    _noise("RGB", width, height).save(out, "JPEG", quality=85)
    return out.getvalue()


def pdf(pages: int = 1) -> bytes:
    """A minimal valid PDF."""
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        f"<< /Type /Pages /Kids [3 0 R] /Count {pages} >>".encode(),
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] >>",
    ]
    body = b"%PDF-1.4\n%" + b"padding to pass the 1 KiB minimum " * 40 + b"\n"
    offsets = []
    for number, obj in enumerate(objects, start=1):
        offsets.append(len(body))
        body += f"{number} 0 obj\n".encode() + obj + b"\nendobj\n"
    xref = len(body)
    body += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    body += b"".join(f"{o:010d} 00000 n \n".encode() for o in offsets)
    body += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return body


HTML = (
    b"<!DOCTYPE html><html><body><script>alert(document.cookie)</script>" + b"<p>filler</p>" * 100 + b"</body></html>"
)


def padded(head: bytes, size: int = 2048) -> bytes:
    """`head` followed by filler: big enough for the example tables' 1 KiB minimum."""
    return head + b" " * max(0, size - len(head))
