"""Custom scalars: HashObject (a JSON object, as platformOS) and BigInt (sizes beyond 32 bits)."""

from __future__ import annotations

from typing import Any, NewType

import strawberry
from graphql import ValueNode, value_from_ast_untyped
from strawberry.types.scalar import ScalarDefinition


def _hash_object(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError("HashObject must be a JSON object")
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

# Registered through StrawberryConfig.scalar_map (the form Strawberry recommends).
SCALARS: dict[object, ScalarDefinition] = {
    HashObject: strawberry.scalar(
        name="HashObject",
        description="A JSON object (string keys, any JSON values).",
        serialize=_hash_object,
        parse_value=_hash_object,
    ),
    BigInt: strawberry.scalar(
        name="BigInt",
        description="An integer up to 64 bits, serialised as a JSON number (file sizes).",
        serialize=_big_int,
        parse_value=_big_int,
        parse_literal=_big_int_literal,
    ),
}
