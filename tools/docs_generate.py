"""The generated parts of the docs site, as Markdown, from the sources that define them.

A page asks for one with a marker comment on a line of its own, e.g. `<!-- generated: settings -->`;
`tools/mkdocs_hooks.py` replaces each marker at build time. So the settings table comes from
`app.settings.describe()`, the error codes from the `AppError` classes of `app/errors.py`, the GraphQL
reference from `schema.graphql`, and `docs/security.md` includes `SECURITY.md`: none of them is ever
copied by hand, and none can drift from what it documents.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Iterable
from pathlib import Path

from graphql import (
    GraphQLArgument,
    GraphQLEnumType,
    GraphQLField,
    GraphQLInputField,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLNamedType,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLSchema,
    GraphQLType,
    GraphQLUnionType,
    build_schema,
    print_ast,
)
from graphql.pyutils import Undefined
from graphql.utilities import ast_from_value

ROOT = Path(__file__).resolve().parent.parent
MARKER = re.compile(r"^<!--\s*generated:\s*([a-z0-9-]+)\s*-->[ \t]*$", re.MULTILINE)
BUILT_IN_SCALARS = {"String", "Int", "Float", "Boolean", "ID"}


class GenerationError(ValueError):
    """A page names a generated block that does not exist; the message says which ones do."""


# -- cells -----------------------------------------------------------------------------------------
def cell(text: str) -> str:
    """Text for one Markdown table cell: one line, no column breaks, no raw HTML."""
    return " ".join(text.split()).replace("|", "\\|").replace("<", "&lt;")


def table(header: Iterable[str], rows: Iterable[Iterable[str]], *, keep: int = 2) -> str:
    """A Markdown table; a column after the first `keep` that is empty in every row is left out."""
    header, grid = list(header), [list(row) for row in rows]
    shown = [i for i in range(len(header)) if i < keep or any(row[i] for row in grid)]
    header, grid = [header[i] for i in shown], [[row[i] for i in shown] for row in grid]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in grid]
    return "\n".join(lines)


# -- settings --------------------------------------------------------------------------------------
def settings_table() -> str:
    """Every setting of `app/settings.py`, one table per group, in declaration order."""
    settings = importlib.import_module("app.settings")
    groups: dict[str, list[list[str]]] = {}
    for row in settings.describe():
        names = row.env.split(" / ")
        variable = f"`{names[0]}`" + "".join(f" (or `{other}`)" for other in names[1:])
        default = f"`{row.default}`" if row.default else "*unset*"
        groups.setdefault(row.group, []).append([variable, default, cell(row.doc)])
    parts = []
    for group, rows in groups.items():
        parts += [f"### {group}", "", table(["Variable", "Default", "Meaning"], rows), ""]
    return "\n".join(parts)


def setting_names() -> list[str]:
    """Every environment variable a setting is read from (fallbacks included)."""
    settings = importlib.import_module("app.settings")
    return [name for row in settings.describe() for name in row.env.split(" / ")]


# -- error codes -----------------------------------------------------------------------------------
def error_classes() -> list[type]:
    """The `AppError` subclasses of `app/errors.py`, in the order they are declared."""
    errors = importlib.import_module("app.errors")
    base = errors.AppError
    declared = [v for v in vars(errors).values() if isinstance(v, type) and v.__module__ == errors.__name__]
    return [value for value in declared if issubclass(value, base) and value is not base]


def error_codes_table() -> str:
    rows = []
    for error in error_classes():
        summary = (error.__doc__ or "").strip().splitlines()
        if not summary:
            raise GenerationError(f"app.errors.{error.__name__} has no docstring: say in one line when it happens")
        rows.append([f"`{error.code}`", str(error.http_status), cell(summary[0])])  # type: ignore[attr-defined]
    return table(["Code", "HTTP status (REST)", "When"], rows)


# -- GraphQL reference -----------------------------------------------------------------------------
def _type_ref(gtype: GraphQLType) -> str:
    """`[Table!]!` with every named type of ours linked to its section."""
    if isinstance(gtype, GraphQLNonNull):
        return _type_ref(gtype.of_type) + "!"
    if isinstance(gtype, GraphQLList):
        return "\\[" + _type_ref(gtype.of_type) + "\\]"
    assert isinstance(gtype, GraphQLNamedType)
    if gtype.name in BUILT_IN_SCALARS:
        return gtype.name
    return f"[{gtype.name}](#{gtype.name})"


def _default(arg: GraphQLArgument | GraphQLInputField) -> str:
    if arg.default_value is Undefined:
        return ""
    node = ast_from_value(arg.default_value, arg.type)
    return f"`{print_ast(node)}`" if node is not None else ""


def _description(thing: object) -> str:
    text = getattr(thing, "description", None) or ""
    reason = getattr(thing, "deprecation_reason", None)
    if reason:
        text = f"**Deprecated:** {reason}. {text}".strip()
    return cell(text)


def _arguments(args: dict[str, GraphQLArgument]) -> str:
    rows = [[f"`{name}`", _type_ref(arg.type), _default(arg), _description(arg)] for name, arg in args.items()]
    return table(["Argument", "Type", "Default", "Meaning"], rows)


def _signature(name: str, field: GraphQLField) -> str:
    args = ", ".join(f"{arg_name}: {arg.type}" for arg_name, arg in field.args.items())
    return f"{name}({args}): {field.type}" if args else f"{name}: {field.type}"


def _root_section(title: str, kind: str, root: GraphQLObjectType | None) -> list[str]:
    if root is None:
        return []
    out = [f"## {title}", ""]
    for name, field in root.fields.items():
        out += [f"### `{name}` {{ #{kind}-{name} }}", ""]
        if field.description or field.deprecation_reason:
            out += [_description(field), ""]
        out += ["```graphql", _signature(name, field), "```", ""]
        if field.args:
            out += [_arguments(field.args), ""]
        out += [f"Returns {_type_ref(field.type)}.", ""]
    return out


def _field_cell(name: str, field: GraphQLField) -> str:
    if not field.args:
        return f"`{name}`"
    args = ", ".join(f"{arg_name}: {arg.type}" for arg_name, arg in field.args.items())
    return f"`{name}({args})`"


def _type_section(gtype: GraphQLNamedType) -> list[str]:
    kinds: list[tuple[type, str]] = [
        (GraphQLObjectType, "object"),
        (GraphQLInputObjectType, "input"),
        (GraphQLEnumType, "enum"),
        (GraphQLInterfaceType, "interface"),
        (GraphQLUnionType, "union"),
        (GraphQLScalarType, "scalar"),
    ]
    kind = next(label for cls, label in kinds if isinstance(gtype, cls))
    summary = f"*{kind}*" + (f": {_description(gtype)}" if gtype.description else "")
    out = [f"### {gtype.name} {{ #{gtype.name} }}", "", summary, ""]
    if isinstance(gtype, GraphQLObjectType | GraphQLInterfaceType):
        rows = [[_field_cell(n, f), _type_ref(f.type), _description(f)] for n, f in gtype.fields.items()]
        out += [table(["Field", "Type", "Meaning"], rows), ""]
    elif isinstance(gtype, GraphQLInputObjectType):
        rows = [[f"`{n}`", _type_ref(f.type), _default(f), _description(f)] for n, f in gtype.fields.items()]
        out += [table(["Field", "Type", "Default", "Meaning"], rows), ""]
    elif isinstance(gtype, GraphQLEnumType):
        rows = [[f"`{n}`", _description(v)] for n, v in gtype.values.items()]
        out += [table(["Value", "Meaning"], rows), ""]
    elif isinstance(gtype, GraphQLUnionType):
        out += ["One of: " + ", ".join(_type_ref(t) for t in gtype.types) + ".", ""]
    return out


def graphql_reference(sdl: str | None = None) -> str:
    """Every query, mutation and subscription with its arguments, then every type, from the SDL."""
    schema: GraphQLSchema = build_schema(sdl if sdl is not None else (ROOT / "schema.graphql").read_text())
    out = _root_section("Queries", "query", schema.query_type)
    out += _root_section("Mutations", "mutation", schema.mutation_type)
    out += _root_section("Subscriptions", "subscription", schema.subscription_type)
    roots = {t.name for t in (schema.query_type, schema.mutation_type, schema.subscription_type) if t is not None}
    skip = roots | BUILT_IN_SCALARS
    named = [t for n, t in sorted(schema.type_map.items()) if not n.startswith("__") and n not in skip]
    out += ["## Types", ""]
    for gtype in named:
        out += _type_section(gtype)
    return "\n".join(out)


# -- included files --------------------------------------------------------------------------------
def security() -> str:
    """SECURITY.md without its title (the page has its own), so it is kept in one place; its links into
    docs/ (right where GitHub shows the file) become links between pages of the site."""
    text = (ROOT / "SECURITY.md").read_text().replace("](docs/", "](")
    lines = text.splitlines()
    if lines and lines[0].startswith("# "):
        lines = lines[1:]
    return "\n".join(lines).strip() + "\n"


GENERATORS: dict[str, Callable[[], str]] = {
    "settings": settings_table,
    "error-codes": error_codes_table,
    "graphql-reference": graphql_reference,
    "security": security,
}


def expand(markdown: str, where: str) -> str:
    """Replace every marker of `markdown` with its generated block."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in GENERATORS:
            known = ", ".join(sorted(GENERATORS))
            raise GenerationError(f"{where}: no generated block named {name!r} (known: {known})")
        return GENERATORS[name]()

    return MARKER.sub(replace, markdown)


def reload_sources() -> None:
    """Re-read app/settings.py and app/errors.py (`mkdocs serve` rebuilds in the same process)."""
    for name in ("app.settings", "app.errors"):
        module = importlib.import_module(name)
        importlib.reload(module)
