"""Keys are server-made; file names never act as paths; every URL form maps back to the key."""

from __future__ import annotations

import pytest

from app.errors import BadUserInput, ForeignUpload
from app.keys import StorageUrls, parse_key, sanitize_file_name

KEY = "photos/image/" + "ab" * 16 + "/a b+é.png"


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
    for bad in ("photos/image/x.png", "photos/image/" + "zz" * 16 + "/x", "a/b/" + "ab" * 16 + "/..", "a/b/c/d/e"):
        with pytest.raises(ForeignUpload):
            parse_key(bad)


def test_every_url_form_maps_to_the_key() -> None:
    urls = StorageUrls("bkt", "eu-west-1", "http://127.0.0.1:9000", cdn_base_url="https://cdn.example.com/a")
    encoded = "photos/image/" + "ab" * 16 + "/a%20b%2B%C3%A9.png"
    for url in (
        f"http://127.0.0.1:9000/bkt/{encoded}",
        f"http://127.0.0.1:9000/bkt/{KEY}",
        f"http://bkt.127.0.0.1:9000/{encoded}",
        f"https://cdn.example.com/a/{encoded}",
        f"http://127.0.0.1:9000/bkt/{encoded}?X-Amz-Signature=x#frag",
        KEY,
    ):
        assert urls.key_from_value(url) == KEY, url
    assert urls.public_object_url(KEY) == f"https://cdn.example.com/a/{encoded.replace('%2B', '%2B')}"


def test_aws_url_forms() -> None:
    urls = StorageUrls("bkt", "eu-west-1", None)
    for host in ("bkt.s3.eu-west-1.amazonaws.com", "bkt.s3.amazonaws.com"):
        assert urls.key_from_value(f"https://{host}/{KEY}") == KEY
    assert urls.key_from_value(f"https://s3.eu-west-1.amazonaws.com/bkt/{KEY}") == KEY
    assert urls.public_object_url(KEY).startswith("https://bkt.s3.eu-west-1.amazonaws.com/photos/")


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
        StorageUrls("bkt", "eu-west-1", None).key_from_value(url)


def test_bad_values() -> None:
    urls = StorageUrls("bkt", "us-east-1", None)
    for value in ("", "   ", "x" * 5000, "a\nb"):
        with pytest.raises(BadUserInput):
            urls.key_from_value(value)
    with pytest.raises((BadUserInput, ForeignUpload)):
        urls.key_from_value("https://bkt.s3.amazonaws.com/photos/image/" + "ab" * 16 + "/%ff%fe.png")


def test_s3_location_writes_a_space_as_plus() -> None:
    """S3's POST <Location> is form-encoded: `/` as %2F, a space as +, a plus as %2B. A URL written
    from the raw key keeps a plus literally, so both readings are candidates, likeliest first."""
    urls = StorageUrls("bkt", "eu-west-1", None)
    token = "ab" * 16
    location = f"https://bkt.s3.eu-west-1.amazonaws.com/photos%2Fimage%2F{token}%2Fmy+holiday%2B1.png"
    assert urls.key_from_value(location) == f"photos/image/{token}/my holiday+1.png"
    assert urls.key_candidates(location) == [
        f"photos/image/{token}/my holiday+1.png",
        f"photos/image/{token}/my+holiday+1.png",
    ]
    raw = f"https://bkt.s3.eu-west-1.amazonaws.com/photos/image/{token}/a+b.png"
    assert urls.key_candidates(raw) == [f"photos/image/{token}/a+b.png", f"photos/image/{token}/a b.png"]
    assert urls.key_candidates(f"photos/image/{token}/a+b.png") == [f"photos/image/{token}/a+b.png"]
