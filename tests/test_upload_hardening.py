"""Upload hardening a hostile client probes: file names that try to be paths or headers, and active
content (SVG, HTML, XML, JS) that would run from the bucket's origin if it were ever served inline.
test_hostile.py covers the save checks for images; this covers names and the active types. The
disposition a file is served with is the server's, set when it is promoted, whatever the client
stored; on moto and on SeaweedFS."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from app.keys import MAX_FILE_NAME_BYTES, sanitize_file_name
from app.tables import is_active_content
from tests import files
from tests.conftest import Harness, post_form, uploaded_key
from tests.gql import ATTACHMENT_PRESIGN, PROPERTY_PRESIGN, RECORD_CREATE

pytestmark = pytest.mark.backends("moto", "seaweedfs")

FILES_TABLE = """
name: files
properties:
  - name: file
    type: attachment
    options:
      acl: public
      content_disposition: inline
  - name: text
    type: attachment
    options:
      acl: public
      content_disposition: inline
      content_types: [text/plain, application/atom+xml]
"""


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("../../etc/passwd", "passwd"),
        ("..\\..\\windows\\win.ini", "win.ini"),
        ("/absolute/path/x.pdf", "x.pdf"),
        ("....//....//x.pdf", "x.pdf"),
        ("..", "file"),
        ("...", "file"),
        ("", "file"),
        ("   ", "file"),
        (".htaccess", "htaccess"),
        ("a\x00b\x1fc\x7f.pdf", "abc.pdf"),
        ("report\r\nSet-Cookie: x=y.pdf", "reportSet-Cookie_ x=y.pdf"),
        ("invoice\u202efdp.exe", "invoicefdp.exe"),  # right-to-left override hides the real extension
        ("zero\u200bwidth.png", "zerowidth.png"),
        ('quote"semi;colon.pdf', "quote_semi;colon.pdf"),
        ("%2e%2e%2fescape.pdf", "_2e_2e_2fescape.pdf"),
        ("${filename}.png", "$_filename_.png"),
        ("Résumé 2026.pdf", "Résumé 2026.pdf"),
        ("Re\u0301sume\u0301.pdf", "Résumé.pdf"),  # NFD becomes NFC, as macOS sends it
        ("写真 東京.jpeg", "写真 東京.jpeg"),
        ("emoji 🎉.gif", "emoji 🎉.gif"),
    ],
)
def test_sanitize_file_name(given: str, expected: str) -> None:
    assert sanitize_file_name(given) == expected


@pytest.mark.parametrize("name", ["a" * 5000 + ".pdf", "é" * 1000 + ".pdf", "写" * 400 + ".tar.gz", "x" * 1000])
def test_very_long_names_are_capped_keeping_the_extension(name: str) -> None:
    safe = sanitize_file_name(name)
    assert 0 < len(safe.encode()) <= MAX_FILE_NAME_BYTES
    safe.encode().decode()  # never a split multi-byte character
    assert safe.rsplit(".", 1)[-1] == name.rsplit(".", 1)[-1] or "." not in name


@pytest.fixture
async def files_app(harness_factory: Any, tmp_path: Path) -> Harness:
    (tmp_path / "files.yml").write_text(FILES_TABLE)
    harness: Harness = await harness_factory(SCHEMA_DIR=str(tmp_path))
    return harness


async def presign(h: Harness, **variables: Any) -> dict[str, Any]:
    data = await h.ok(ATTACHMENT_PRESIGN, {"table": "files", "prop": "file", **variables})
    result: dict[str, Any] = data["attachment_presign_url"]
    return result


async def test_hostile_file_name_cannot_escape_its_key(files_app: Harness) -> None:
    h = files_app
    presigned = await presign(h, type="text/plain", name="../../../photos/image/x\r\nX-Evil: 1.txt")
    key = presigned["key"]
    parts = key.split("/")
    assert parts[:3] == ["cache", "files", "file"] and len(parts) == 5
    assert ".." not in key and "\r" not in key and "\n" not in key
    assert presigned["upload_url_payload"]["key"] == key
    assert "\n" not in presigned["upload_url_payload"]["Content-Disposition"]
    assert (await post_form(presigned, b"hello", "x.txt", "text/plain")).status_code == 201
    saved = await save(h, presigned["url"])
    async with httpx.AsyncClient() as client:
        got = await client.get(saved["data"]["record_create"]["upload"]["url"])
    assert got.status_code == 200 and "\n" not in got.headers["content-disposition"]
    assert got.headers["content-disposition"] == 'inline; filename="xX-Evil_ 1.txt"'


async def save(h: Harness, url: str, prop: str = "file") -> dict[str, Any]:
    return await h.gql(RECORD_CREATE, {"table": "files", "prop": prop, "props": [{"name": prop, "value": url}]})


async def served(h: Harness, result: dict[str, Any]) -> httpx.Response:
    assert "errors" not in result, result
    async with httpx.AsyncClient() as client:
        return await client.get(result["data"]["record_create"]["upload"]["url"])


ACTIVE = [
    ("text/html", b"<html><script>alert(document.cookie)</script></html>"),
    ("image/svg+xml", b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>'),
    ("application/javascript", b"alert(1)"),
    ("application/rss+xml", b'<rss><x:script xmlns:x="http://www.w3.org/1999/xhtml">alert(1)</x:script></rss>'),
    ("text/xml", b"<x/>"),
]


@pytest.mark.parametrize(("content_type", "body"), ACTIVE)
async def test_active_content_is_served_as_attachment_whatever_was_asked_or_stored(
    files_app: Harness, content_type: str, body: bytes
) -> None:
    h = files_app
    presigned = await presign(h, type=content_type, name="page", disp="inline")
    # A hostile client also rewrites the stored disposition to inline (moto stores it; SeaweedFS
    # refuses a field the policy does not sign, so there the honest form is posted).
    fields = {**presigned["upload_url_payload"], "Content-Disposition": "inline"}
    stored = await post_form({**presigned, "upload_url_payload": fields}, body, "page", content_type)
    if stored.status_code != 201:
        assert h.server.enforces_policy and stored.status_code == 403
        assert (await post_form(presigned, body, "page", content_type)).status_code == 201
    got = await served(h, await save(h, presigned["url"]))
    assert got.status_code == 200 and got.content == body
    assert got.headers["content-type"] == content_type
    assert got.headers["content-disposition"].startswith("attachment")


async def test_passive_content_keeps_the_propertys_disposition(files_app: Harness) -> None:
    h = files_app
    presigned = await presign(h, type="application/pdf", name="x.pdf")
    assert (await post_form(presigned, files.pdf(), "x.pdf", "application/pdf")).status_code == 201
    got = await served(h, await save(h, presigned["url"]))
    assert got.headers["content-disposition"].startswith("inline")


async def test_a_file_of_unknown_type_takes_the_type_its_bytes_show(files_app: Harness) -> None:
    h = files_app
    # No type declared or sent (platformOS's default): the bytes decide, and HTML is never inline.
    for body, media, disposition in (
        (files.pdf(), "application/pdf", "inline"),
        (b"<!DOCTYPE html><html><script>alert(1)</script></html>", "text/html", "attachment"),
        (b"\x00\x01 no known format", "application/octet-stream", "inline"),
    ):
        data = await h.ok(PROPERTY_PRESIGN, {"table": "files", "prop": "file", "presign": None, "include": False})
        presigned = data["property_upload_presigned_url"]
        async with httpx.AsyncClient() as client:
            posted = await client.post(
                presigned["upload_url"], data=presigned["upload_url_payload"], files={"file": ("upload", body)}
            )
        assert posted.status_code == 201, posted.text
        got = await served(h, await save(h, uploaded_key(presigned, "upload")))
        assert got.content == body and got.headers["content-type"] == media, media
        assert got.headers["content-disposition"].startswith(disposition), media


async def test_active_content_as_attachment_is_saved_and_downloads_as_attachment(files_app: Harness) -> None:
    h = files_app
    body = b"<html><script>alert(1)</script></html>"
    presigned = await presign(h, type="text/html", name="page.html")
    assert (await post_form(presigned, body, "page.html", "text/html")).status_code == 201
    result = await save(h, presigned["url"])
    assert "errors" not in result, result
    async with httpx.AsyncClient() as client:
        got = await client.get(result["data"]["record_create"]["upload"]["url"])
    assert got.status_code == 200 and got.content == body
    assert got.headers["content-disposition"].startswith("attachment")


async def test_markup_disguised_as_plain_text_is_rejected(files_app: Harness) -> None:
    h = files_app
    data = await h.ok(ATTACHMENT_PRESIGN, {"table": "files", "prop": "text", "type": "text/plain", "name": "a.txt"})
    presigned = data["attachment_presign_url"]
    markup = b"<!DOCTYPE html><html><body><script>alert(1)</script></body></html>"
    assert (await post_form(presigned, markup, "a.txt", "text/plain")).status_code == 201
    result = await save(h, presigned["url"], prop="text")
    assert result["errors"][0]["extensions"]["code"] == "CONTENT_MISMATCH"
    assert await h.keys() == []


def test_every_xml_flavour_counts_as_active() -> None:
    for media in ("application/atom+xml", "image/svg+xml; charset=utf-8", "TEXT/HTML", "application/mathml+xml"):
        assert is_active_content(media), media
    for media in ("application/pdf", "image/png", "text/plain", "application/json"):
        assert not is_active_content(media), media


async def test_an_xml_allowlist_serves_xml_as_attachment(files_app: Harness) -> None:
    h = files_app
    data = await h.ok(ATTACHMENT_PRESIGN, {"table": "files", "prop": "text", "type": "application/atom+xml"})
    presigned = data["attachment_presign_url"]
    feed = b'<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"></feed>'
    assert (await post_form(presigned, feed, "feed.xml", "application/atom+xml")).status_code == 201
    got = await served(h, await save(h, uploaded_key(presigned, "feed.xml"), prop="text"))
    assert got.headers["content-disposition"].startswith("attachment")
