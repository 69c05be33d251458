"""Custom scalars: HashObject (a JSON object), JSONPayload (any JSON value) and JSONDate (an ISO 8601
date-time), as platformOS names them, and BigInt (sizes beyond 32 bits)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, NewType

import strawberry
from graphql import ValueNode, value_from_ast_untyped
from strawberry.types.scalar import ScalarDefinition


def _hash_object(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError("HashObject must be a JSON object")
    return value


def _json_payload_literal(node: ValueNode, variables: dict[str, Any] | None = None) -> Any:
    return value_from_ast_untyped(node, variables)


def _json_date(value: Any) -> str:
    if not isinstance(value, datetime):
        raise ValueError("JSONDate must be a date-time")
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _parse_json_date(value: Any) -> datetime:
    """An ISO 8601 date-time, or a date standing for its midnight (UTC when no offset is given)."""
    if isinstance(value, str) and len(value) <= 64:
        try:
            parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            pass
        else:
            return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed
    raise ValueError(f"JSONDate must be an ISO 8601 date-time such as 2026-01-31T12:00:00Z, got {str(value)[:40]!r}")


def _json_date_literal(node: ValueNode, variables: dict[str, Any] | None = None) -> datetime:
    return _parse_json_date(value_from_ast_untyped(node, variables))


def _property_name(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("PropertyName must be a string")
    return value


def _big_int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError("BigInt must be an integer")
    number = int(value)
    if not -(2**63) <= number < 2**63:
        raise ValueError("BigInt must fit in 64 bits")
    return number


def _big_int_literal(node: ValueNode, variables: dict[str, Any] | None = None) -> int:
    return _big_int(value_from_ast_untyped(node, variables))


HashObject = NewType("HashObject", dict)  # type: ignore[type-arg]
BigInt = NewType("BigInt", int)
JSONPayload = NewType("JSONPayload", object)
JSONDate = NewType("JSONDate", datetime)
PropertyName = NewType("PropertyName", str)

# Registered through StrawberryConfig.scalar_map (the form Strawberry recommends).
SCALARS: dict[object, ScalarDefinition] = {
    HashObject: strawberry.scalar(
        name="HashObject",
        description="A JSON object (string keys, any JSON values).",
        serialize=_hash_object,
        parse_value=_hash_object,
    ),
    JSONPayload: strawberry.scalar(
        name="JSONPayload",
        description="Any JSON value (object, array, string, number, boolean).",
        serialize=lambda value: value,
        parse_value=lambda value: value,
        parse_literal=_json_payload_literal,
    ),
    JSONDate: strawberry.scalar(
        name="JSONDate",
        description="A date-time in ISO 8601 (UTC, e.g. 2026-01-31T12:00:00.123456Z).",
        serialize=_json_date,
        parse_value=_parse_json_date,
        parse_literal=_json_date_literal,
    ),
    PropertyName: strawberry.scalar(
        name="PropertyName",
        description="The name of a property (or id) of a table.",
        serialize=str,
        parse_value=_property_name,
    ),
    BigInt: strawberry.scalar(
        name="BigInt",
        description="An integer up to 64 bits, serialised as a JSON number (file sizes).",
        serialize=_big_int,
        parse_value=_big_int,
        parse_literal=_big_int_literal,
    ),
}
