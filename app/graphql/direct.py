"""graphql-core resolvers that call our resolver functions directly, for the hot fields.

Strawberry wraps every resolver in a generic chain: it builds its own Info object, converts every
argument by walking its type at each call (an import and a dozen type checks per value), applies
field extensions and binds self, root and info: 10 to 15 us per call for scalar arguments, about
80 us for a presign mutation's nested input objects. A page of 100 records makes 300 such calls.

A direct resolver does the same work with what can be decided once at start-up decided once: the
argument converters are compiled from the schema (scalars pass through as graphql-core coerced them,
lists are copied, input objects become their Strawberry classes with the same defaults), and the
call is `resolver(source, info=info, **arguments)`. Only fields without field extensions or
permission classes, and argument types made of scalars, lists and plain input objects qualify;
anything else is refused at start-up. The resolvers listed for it may use only `info.context`
(graphql-core's info carries the same context object), nothing else of Strawberry's Info.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from typing import Any

import strawberry
from graphql import (
    GraphQLEnumType,
    GraphQLField,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLScalarType,
)
from strawberry.schema.schema_converter import GraphQLCoreConverter
from strawberry.types.base import StrawberryObjectDefinition
from strawberry.types.field import StrawberryField

Converter = Callable[[Any], Any] | None  # None: the value passes through unchanged
Cache = dict[str, Callable[[Any], Any]]
_BACKREF = GraphQLCoreConverter.DEFINITION_BACKREF


def install_direct_resolvers(schema: strawberry.Schema, fields: Iterable[tuple[str, str]]) -> None:
    """Give each (type, field) a direct resolver; a field that does not qualify is a programming
    error, reported at start-up rather than resolved differently."""
    cache: Cache = {}
    for type_name, field_name in fields:
        gql_type = schema._schema.get_type(type_name)
        if not isinstance(gql_type, GraphQLObjectType) or field_name not in gql_type.fields:
            raise ValueError(f"{type_name}.{field_name} is not a field of the schema")
        gql_field = gql_type.fields[field_name]
        gql_field.resolve = _direct(f"{type_name}.{field_name}", gql_field, cache)


def _direct(where: str, gql_field: GraphQLField, cache: Cache) -> Callable[..., Any]:
    field = (gql_field.extensions or {}).get(_BACKREF)
    if not isinstance(field, StrawberryField) or field.base_resolver is None:
        raise ValueError(f"{where} has no resolver of its own")
    resolver = field.base_resolver
    if field.extensions or field.permission_classes:
        raise ValueError(f"{where} has field extensions or permission classes: Strawberry must run them")
    if resolver.self_parameter is None or resolver.root_parameter or resolver.parent_parameter:
        raise ValueError(f"{where}: a direct resolver is a method taking self (and info)")
    if isinstance(resolver.wrapped_func, (staticmethod, classmethod)) or not callable(resolver.wrapped_func):
        raise ValueError(f"{where}: a direct resolver is a plain method")
    function: Callable[..., Any] = resolver.wrapped_func
    info_name = resolver.info_parameter.name if resolver.info_parameter is not None else None
    converters: list[tuple[str, Callable[[Any], Any]]] = []
    # graphql-core passes arguments by their GraphQL names (e.g. `_index_update`), the function takes Python ones.
    renamed: list[tuple[str, str]] = []
    for argument in field.arguments:
        graphql_name = argument.graphql_name or argument.python_name
        graphql_arg = gql_field.args.get(graphql_name)
        if graphql_arg is None:
            raise ValueError(f"{where}({graphql_name}): no such argument in the schema")
        if graphql_name != argument.python_name:
            renamed.append((graphql_name, argument.python_name))
        converter = _converter(f"{where}({graphql_name})", graphql_arg.type, cache)
        if converter is not None:
            converters.append((graphql_name, converter))

    def resolve(source: Any, info: Any, **arguments: Any) -> Any:
        for name, convert in converters:
            if name in arguments:
                value = arguments[name]
                arguments[name] = None if value is None else convert(value)
        for graphql_name, python_name in renamed:
            if graphql_name in arguments:
                arguments[python_name] = arguments.pop(graphql_name)
        if info_name is not None:
            arguments[info_name] = info
        return function(source, **arguments)

    return resolve


def _converter(where: str, gql_type: GraphQLInputType, cache: Cache) -> Converter:
    """What Strawberry's convert_argument does to a value of `gql_type`, decided once."""
    if isinstance(gql_type, GraphQLNonNull):
        return _converter(where, gql_type.of_type, cache)
    if isinstance(gql_type, GraphQLList):
        item = _converter(where, gql_type.of_type, cache)
        if item is None:
            # Copied even so: graphql-core hands every request the same default list object.
            return list
        return lambda values: [None if v is None else item(v) for v in values]
    if isinstance(gql_type, GraphQLScalarType):
        if gql_type.name == "GlobalID":
            raise ValueError(f"{where}: GlobalID arguments are decoded by Strawberry")
        return None
    if isinstance(gql_type, GraphQLEnumType):
        # Strawberry's enum types already coerce to the Python enum member.
        if not hasattr(gql_type, "wrapped_cls"):
            raise ValueError(f"{where}: {gql_type.name} is not a Strawberry enum")
        return None
    if isinstance(gql_type, GraphQLInputObjectType):
        return _input_converter(where, gql_type, cache)
    raise ValueError(f"{where}: unsupported argument type {gql_type}")


def _input_converter(where: str, gql_type: GraphQLInputObjectType, cache: Cache) -> Callable[[Any], Any]:
    """Cached by type name, so a type that contains itself (a filter's `or`) is built once."""
    known = cache.get(gql_type.name)
    if known is not None:
        return known
    fields: list[tuple[str, str, Converter]] = []

    def build(value: Any) -> Any:
        kwargs = dict.fromkeys(unset)
        for graphql_name, python_name, convert in fields:
            if graphql_name in value:
                given = value[graphql_name]
                kwargs[python_name] = given if convert is None or given is None else convert(given)
        return cls(**kwargs)

    cache[gql_type.name] = build
    cls, unset = _input_fields(where, gql_type, fields, cache)
    return build


def _input_fields(
    where: str, gql_type: GraphQLInputObjectType, fields: list[tuple[str, str, Converter]], cache: Cache
) -> tuple[type, list[str]]:
    """Fill `fields` with (GraphQL name, Python name, converter); returns the class and the fields
    Strawberry sets to None when not given."""
    definition = (gql_type.extensions or {}).get(_BACKREF)
    if not isinstance(definition, StrawberryObjectDefinition) or not definition.is_input:
        raise ValueError(f"{where}: {gql_type.name} is not a Strawberry input type")
    if definition.from_input is not None or definition.is_one_of:
        raise ValueError(f"{where}: {gql_type.name} builds its own value")
    cls = definition.origin
    for graphql_name, input_field in gql_type.fields.items():
        strawberry_field = (input_field.extensions or {}).get(_BACKREF)
        if not isinstance(strawberry_field, StrawberryField):
            raise ValueError(f"{where}: {gql_type.name}.{graphql_name} has no Strawberry field")
        fields.append(
            (graphql_name, strawberry_field.python_name, _converter(f"{where}.{graphql_name}", input_field.type, cache))
        )
    # Strawberry sets the fields that have no default to None before filling in the given ones.
    unset = [
        f.python_name
        for f in definition.fields
        if f.default_value is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    return cls, unset
