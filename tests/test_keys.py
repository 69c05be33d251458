"""Keys are server-made (quarantine and permanent forms); file names never act as paths; every URL form
of storage or the CDN maps back to the key."""

from __future__ import annotations

import pytest

from app.errors import BadUserInput, ForeignUpload
from app.keys import parse_key, permanent_key, quarantine_key, sanitize_file_name
from app.storage.s3 import S3Config, S3Storage
from app.tables import SchemaError, parse_table
from app.uploads.resolving import Resolving

KEY = "photos/image/" + "ab" * 16 + "/a b+é.png"


def urls(bucket: str, region: str, endpoint: str | None, cdn: str | None = None) -> Resolving:
    """The URL side of a configured server: the S3 adapter's forms plus the CDN (no request is sent)."""
    return Resolving(S3Storage(S3Config(bucket=bucket, region=region, endpoint_url=endpoint)), cdn)


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("../../etc/passwd", "passwd"),
        ("..\\..\\windows\\system.ini", "system.ini"),
        ("a\x00b\x1fc.pdf", "abc.pdf"),
        ("rtl\u202efdp.exe", "rtlfdp.exe"),
        ("..", "file"),
        ("  .hidden ", "hidden"),
        ("Résumé 2026 — final.pdf", "Résumé 2026 — final.pdf"),
        ("日本語.png", "日本語.png"),
        ('a"b<c>d|e?f*g:h.txt', "a_b_c_d_e_f_g_h.txt"),
        ("x...pdf", "x.pdf"),
        ("", "file"),
    ],
)
def test_sanitize_file_name(raw: str, clean: str) -> None:
    assert sanitize_file_name(raw) == clean


def test_long_names_keep_their_extension_within_the_byte_budget() -> None:
    name = sanitize_file_name("é" * 500 + ".jpeg")
    assert name.endswith(".jpeg") and len(name.encode()) <= 180


def test_parse_key() -> None:
    parsed = parse_key(KEY)
    assert (parsed.table, parsed.prop, parsed.file_name, parsed.key) == ("photos", "image", "a b+é.png", KEY)
    assert not parsed.quarantined and parsed.permanent == KEY and parsed.quarantine == "cache/" + KEY
    quarantined = parse_key("cache/" + KEY)
    assert quarantined.quarantined and quarantined.permanent == KEY and quarantined.key == "cache/" + KEY
    assert permanent_key(quarantine_key(KEY)) == KEY
    for bad in (
        "photos/image/x.png",
        "photos/image/" + "zz" * 16 + "/x",
        "a/b/" + "ab" * 16 + "/..",
        "a/b/c/d/e",
        "cache/photos/" + "ab" * 16 + "/x.png",
        "cache/cache/photos/image/" + "ab" * 16 + "/x.png",
    ):
        with pytest.raises(ForeignUpload):
            parse_key(bad)


def test_no_table_is_named_like_the_quarantine() -> None:
    with pytest.raises(SchemaError, match="reserved"):
        parse_table({"name": "cache", "properties": []}, "cache.yml")


def test_every_url_form_maps_to_the_key() -> None:
    resolving = urls("bkt", "eu-west-1", "http://127.0.0.1:9000", "https://cdn.example.com/a")
    encoded = "photos/image/" + "ab" * 16 + "/a%20b%2B%C3%A9.png"
    for key in (KEY, "cache/" + KEY):
        for url in (
            f"http://127.0.0.1:9000/bkt/{encoded}",
            f"http://127.0.0.1:9000/bkt/{KEY}",
            f"http://bkt.127.0.0.1:9000/{encoded}",
            f"https://cdn.example.com/a/{encoded}",
            f"http://127.0.0.1:9000/bkt/{encoded}?X-Amz-Signature=x#frag",
            KEY,
        ):
            if key != KEY:
                url = url.replace("photos/", "cache/photos/")
            assert resolving.key_from_value(url) == key, url
    assert resolving.public_url(KEY) == f"https://cdn.example.com/a/{encoded}"
    assert resolving.storage.public_url(KEY) == f"http://127.0.0.1:9000/bkt/{encoded}"


def test_aws_url_forms() -> None:
    resolving = urls("bkt", "eu-west-1", None)
    for host in ("bkt.s3.eu-west-1.amazonaws.com", "bkt.s3.amazonaws.com"):
        assert resolving.key_from_value(f"https://{host}/{KEY}") == KEY
    assert resolving.key_from_value(f"https://s3.eu-west-1.amazonaws.com/bkt/{KEY}") == KEY
    # S3's Location encodes the slashes too.
    assert resolving.key_from_value("https://bkt.s3.amazonaws.com/" + KEY.replace("/", "%2F")) == KEY
    assert resolving.public_url(KEY).startswith("https://bkt.s3.eu-west-1.amazonaws.com/photos/")


@pytest.mark.parametrize(
    "url",
    [
        f"https://other.s3.amazonaws.com/{KEY}",
        f"https://s3.amazonaws.com/other/{KEY}",
        f"https://bkt.s3.amazonaws.com.evil.com/{KEY}",
        f"https://evil.com/bkt.s3.amazonaws.com/{KEY}",
        f"https://user@evil.com/{KEY}",
        f"ftp://bkt.s3.amazonaws.com/{KEY}",
        f"javascript://bkt.s3.amazonaws.com/{KEY}",
    ],
)
def test_foreign_urls(url: str) -> None:
    with pytest.raises(ForeignUpload):
        urls("bkt", "eu-west-1", None).key_from_value(url)


def test_bad_values() -> None:
    resolving = urls("bkt", "us-east-1", None)
    for value in ("", "   ", "x" * 5000, "a\nb"):
        with pytest.raises(BadUserInput):
            resolving.key_from_value(value)
    with pytest.raises((BadUserInput, ForeignUpload)):
        resolving.key_from_value("https://bkt.s3.amazonaws.com/photos/image/" + "ab" * 16 + "/%ff%fe.png")
