"""app/jsonbody.py: the strict JSON every request body goes through."""

from __future__ import annotations

from typing import Any

import pytest

from app.jsonbody import MAX_DEPTH, MalformedJson, is_json_media_type, loads


def nested(levels: int) -> bytes:
    return b"[" * levels + b"]" * levels


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b'{"a": "\xff"}', "not UTF-8"),
        ('{"a": 1}'.encode("utf-16"), "not UTF-8"),
        ('{"a": 1}'.encode("utf-32"), "not UTF-8"),
        (b"\xef\xbb\xbf{}", "byte order mark"),
        (b"", "not valid JSON"),
        (b"{'a': 1}", "not valid JSON"),
        (b'{"a": "\x01"}', "not valid JSON"),  # a raw control character in a string
        (nested(MAX_DEPTH + 1), f"more than {MAX_DEPTH} deep"),
        (nested(200_000), f"more than {MAX_DEPTH} deep"),
        (b'{"a":' * 500 + b"1" + b"}" * 500, f"more than {MAX_DEPTH} deep"),
        (b"9" * 5000, "too many digits"),
        (b"[1e400]", "too large"),
        (b"[-1e400]", "too large"),
        (b"NaN", "NaN is not JSON"),
        (b'{"a": Infinity}', "Infinity is not JSON"),
        (b'{"a": 1, "b": {"c": 1, "c": 2}}', "'c' appears more than once"),
        (b'{"a": "\\ud800"}', "lone UTF-16 surrogate"),
        (b'{"a": "\\udc00\\ud800"}', "lone UTF-16 surrogate"),
    ],
)
def test_refused(data: bytes, reason: str) -> None:
    with pytest.raises(MalformedJson, match=reason):
        loads(data)


@pytest.mark.parametrize(
    ("data", "value"),
    [
        (nested(MAX_DEPTH), None),
        (b'{"a": "[[[[' + b"[" * 200 + b'"}', {"a": "[" * 204}),  # brackets in strings are text
        (b'{"a": "\\\\ud800"}', {"a": "\\ud800"}),  # an escaped backslash, not a surrogate
        (b'"\\ud83d\\ude00"', "\U0001f600"),  # a surrogate pair is one character
        (b"1e308", 1e308),
        (b"9" * 4300, int("9" * 4300)),
        (b'{"a": 1, "b": {"a": 2}}', {"a": 1, "b": {"a": 2}}),  # one key in two objects
        (b"5", 5),  # any JSON value: callers decide which they accept
    ],
)
def test_accepted(data: bytes, value: Any) -> None:
    decoded = loads(data)
    if value is not None:
        assert decoded == value


def test_the_message_names_what_was_read() -> None:
    with pytest.raises(MalformedJson, match=r"^the variables parameter is not valid JSON"):
        loads("{", what="the variables parameter")


@pytest.mark.parametrize(
    ("content_type", "ok"),
    [
        ("application/json", True),
        ("Application/JSON", True),
        ("application/json; charset=utf-8", True),
        ("application/json;charset=UTF-8", True),
        ('application/json; charset="utf-8"', True),
        ("application/json; foo=bar; Charset=utf-8", True),
        ("application/json; charset=utf-16", False),
        ("application/json; charset=latin-1", False),
        ("application/jsonx", False),
        ("application/graphql", False),
        ("text/plain", False),
        ("multipart/form-data; boundary=x", False),
        ("", False),
        (";;;", False),
    ],
)
def test_json_media_type(content_type: str, ok: bool) -> None:
    assert is_json_media_type(content_type) is ok
