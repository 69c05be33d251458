"""Pure: JSON from a client, decoded strictly. Every request body and JSON query parameter the API
reads goes through `loads`, so each transport refuses the same malformed input with the same message.

Python's json module alone accepts what a server must not: bytes in UTF-16 or UTF-32 (it sniffs the
encoding), `NaN` and `Infinity`, numbers that overflow to infinity, and a repeated key (the last one
silently wins, so two parsers in front of each other may disagree about what a request says). It
refuses other input with exceptions that are not JSONDecodeError: a RecursionError when arrays nest
about a thousand deep, and a ValueError for an integer of more than 4300 digits. Values well under
that recursion depth still break later steps that recurse over them (variable coercion, encoding a
response or a JSON column), hence MAX_DEPTH.
"""

from __future__ import annotations

import json
import math
import re
from array import array
from itertools import accumulate
from typing import Any

# Deepest nesting of arrays and objects accepted, the body's own object included. A GraphQL request
# with a JSON property value is about six levels before the value's own.
MAX_DEPTH = 64


class MalformedJson(ValueError):
    """The input is not JSON this server accepts; the message says why, for the client."""


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise MalformedJson(f"the number {text[:40]} is too large")
    return value


def _constant(name: str) -> float:
    raise MalformedJson(f"{name} is not JSON; send numbers as finite decimals")


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        repeated = next(k for k, _ in pairs if k in seen or seen.add(k))  # type: ignore[func-returns-value]
        raise MalformedJson(f"the key {repeated[:100]!r} appears more than once in one object")
    return obj


_DECODER = json.JSONDecoder(object_pairs_hook=_object, parse_float=_finite, parse_constant=_constant)

# A JSON string, without backtracking (the input is already known to be valid JSON).
_STRING = re.compile(r'"(?:[^"\\]|\\.)*+"')
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
# An escaped UTF-16 surrogate: legal JSON, but alone it is no character and cannot be stored as UTF-8.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
# Openers to +1 and closers to -1 as signed bytes, so that the running sum is the depth.
_STEPS = str.maketrans({"[": "\x01", "{": "\x01", "]": "\xff", "}": "\xff"})


def _depth(text: str) -> int:
    """The deepest nesting of valid JSON `text`, in C-speed passes (a body can be 1 MiB of brackets)."""
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    steps = array("b", brackets.translate(_STEPS).encode("latin-1"))
    return max(accumulate(steps), default=0)


def is_json_media_type(content_type: str) -> bool:
    """True for `application/json`, in UTF-8 (said or implied), the one body type the API reads."""
    media, *params = content_type.split(";")
    charset = "utf-8"
    for param in params:
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset":
            charset = value.strip().strip('"').lower()
    return media.strip().lower() == "application/json" and charset == "utf-8"


def loads(data: bytes | str, *, what: str = "the body") -> Any:
    """Decode UTF-8 JSON, or raise MalformedJson naming `what` was wrong."""
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MalformedJson(f"{what} is not UTF-8 (invalid byte at offset {exc.start})") from None
    else:
        text = data
    if text.startswith("\ufeff"):
        raise MalformedJson(f"{what} starts with a byte order mark; send UTF-8 JSON without one")
    try:
        value = _DECODER.decode(text)
    except json.JSONDecodeError as exc:
        raise MalformedJson(f"{what} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:
        raise MalformedJson(f"{what} nests arrays or objects more than {MAX_DEPTH} deep") from None
    except ValueError as exc:
        if isinstance(exc, MalformedJson):
            raise
        # int() refuses integers of more than sys.get_int_max_str_digits() digits.
        raise MalformedJson(f"{what} holds a number with too many digits") from None
    # Only a text with more openers than the limit can be nested deeper than it.
    if text.count("[") + text.count("{") > MAX_DEPTH and _depth(text) > MAX_DEPTH:
        raise MalformedJson(f"{what} nests arrays or objects more than {MAX_DEPTH} deep")
    if _SURROGATE_ESCAPE.search(text):
        # Pairs were joined into one character by the decoder; a lone half cannot be encoded.
        try:
            json.dumps(value, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise MalformedJson(f"{what} holds a lone UTF-16 surrogate (\\uD800-\\uDFFF) in a string") from None
    return value
