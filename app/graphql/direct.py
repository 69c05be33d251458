"""graphql-core resolvers that call our resolver functions directly, for fields resolved once per list
item.

Strawberry wraps every resolver in a generic chain: it builds its own Info object, converts every
argument (an import and a dozen type checks each), applies field extensions and binds self, root and
info, about 10 to 15 us per call. A page of 100 records resolves 300 such fields. For a field whose
arguments are all scalars (graphql-core already hands them over as Python values, which Strawberry
passes on unchanged) and which has no field extensions or permission classes, the direct resolver
does the same thing: `resolver(source, info=info, **arguments)`. The resolvers listed for it may use
only `info.context` (graphql-core's info carries the same context object), nothing else of
Strawberry's Info.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import strawberry
from graphql import GraphQLField, GraphQLObjectType, GraphQLScalarType, get_named_type
from strawberry.schema.schema_converter import GraphQLCoreConverter
from strawberry.types.field import StrawberryField


def install_direct_resolvers(schema: strawberry.Schema, fields: Iterable[tuple[str, str]]) -> None:
    """Give each (type, field) a direct resolver; a field that does not qualify is a programming
    error, reported at start-up rather than resolved differently."""
    for type_name, field_name in fields:
        gql_type = schema._schema.get_type(type_name)
        if not isinstance(gql_type, GraphQLObjectType) or field_name not in gql_type.fields:
            raise ValueError(f"{type_name}.{field_name} is not a field of the schema")
        gql_field = gql_type.fields[field_name]
        gql_field.resolve = _direct(type_name, field_name, gql_field)


def _direct(type_name: str, field_name: str, gql_field: GraphQLField) -> Any:
    where = f"{type_name}.{field_name}"
    field = (gql_field.extensions or {}).get(GraphQLCoreConverter.DEFINITION_BACKREF)
    if not isinstance(field, StrawberryField) or field.base_resolver is None:
        raise ValueError(f"{where} has no resolver of its own")
    resolver = field.base_resolver
    if field.extensions or field.permission_classes:
        raise ValueError(f"{where} has field extensions or permission classes: Strawberry must run them")
    if resolver.self_parameter is None or resolver.root_parameter or resolver.parent_parameter:
        raise ValueError(f"{where}: a direct resolver is a method taking self (and info)")
    for argument in field.arguments:
        graphql_arg = gql_field.args.get(argument.python_name)
        named = get_named_type(graphql_arg.type) if graphql_arg is not None else None
        if not isinstance(named, GraphQLScalarType) or named.name == "GlobalID":
            raise ValueError(f"{where}({argument.python_name}): only scalar arguments pass through unchanged")
    if isinstance(resolver.wrapped_func, (staticmethod, classmethod)) or not callable(resolver.wrapped_func):
        raise ValueError(f"{where}: a direct resolver is a plain method")
    function: Callable[..., Any] = resolver.wrapped_func
    info_name = resolver.info_parameter.name if resolver.info_parameter is not None else None

    if info_name is None:

        def resolve(source: Any, info: Any, **arguments: Any) -> Any:
            return function(source, **arguments)

    else:

        def resolve(source: Any, info: Any, **arguments: Any) -> Any:
            arguments[info_name] = info
            return function(source, **arguments)

    return resolve
