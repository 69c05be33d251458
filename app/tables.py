"""Pure: table definitions from YAML (one file per table, as platformOS), validated with precise messages."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from app.version_spec import VersionSpec, VersionSpecError, parse_versions

UPLOAD_TYPES = ("attachment", "image", "upload")
# The quarantine prefix of storage keys (app/keys.py): no table may be named like it.
RESERVED_TABLE = "cache"
PLAIN_TYPES = ("string", "integer", "float", "boolean", "datetime", "array")
IMAGE_CONTENT_TYPES = ("image/jpeg", "image/png", "image/webp", "image/gif", "image/avif", "image/svg+xml")
# Content a browser would execute if served inline from the bucket's origin.
ACTIVE_CONTENT_TYPES = frozenset(
    {
        "text/html",
        "application/xhtml+xml",
        "image/svg+xml",
        "text/xml",
        "application/xml",
        "text/javascript",
        "application/javascript",
        "application/x-javascript",
        "application/ecmascript",
        "text/ecmascript",
        "application/x-shockwave-flash",
        "text/xsl",
    }
)
KIB = 1024
# S3 accepts at most 5 GiB in one POST or PUT; bigger files go through multipart (up to 5 TiB).
SINGLE_UPLOAD_MAX = 5 * 1024**3
MULTIPART_MAX = 5 * 1024**4

_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
_CONTENT_TYPE = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]{0,126}/(\*|[a-z0-9][a-z0-9!#$&^_.+-]{0,126})$")
_DEFAULTS: dict[str, dict[str, Any]] = {
    "attachment": {"acl": "private", "content_disposition": "attachment"},
    "image": {"acl": "public", "content_disposition": "inline"},
    "upload": {"acl": "public", "content_disposition": "inline"},
}
_OPTION_KEYS = {"acl", "content_disposition", "cache_control", "content_length", "content_types", "scan", "versions"}
_TABLE_KEYS = ("name", "properties", "access")
READ_RULES = ("public", "authenticated", "owner")
WRITE_RULES = ("authenticated", "owner")


class SchemaError(ValueError):
    """A table file is invalid; the message names the file, the property and the problem."""


def content_type_matches(content_type: str, pattern: str) -> bool:
    """`image/png` matches `image/png` and `image/*`; comparison ignores case and parameters."""
    base = content_type.split(";", 1)[0].strip().lower()
    if pattern.endswith("/*"):
        return base.startswith(pattern[:-1])
    return base == pattern


def is_active_content(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    # Any XML flavour (atom, rss, mathml...) is rendered as an XML document by browsers, which run
    # XHTML-namespaced scripts in it.
    return media in ACTIVE_CONTENT_TYPES or media.endswith("+xml")


@dataclass(frozen=True)
class UploadOptions:
    acl: str
    content_disposition: str
    cache_control: str | None
    min_size: int  # bytes
    max_size: int | None  # bytes; None: only storage's own limits
    content_types: tuple[str, ...]  # allowlist, lower case; () admits any type
    versions: tuple[VersionSpec, ...]
    # Files stay in quarantine, never served, until the virus scanner finds them clean (app/scanning.py).
    scan: bool = False

    def allows(self, content_type: str) -> bool:
        return not self.content_types or any(content_type_matches(content_type, p) for p in self.content_types)

    def as_dict(self) -> dict[str, Any]:
        return {
            "acl": self.acl,
            "content_disposition": self.content_disposition,
            "cache_control": self.cache_control,
            "content_length": {
                "gte": self.min_size // KIB,
                "lte": None if self.max_size is None else self.max_size // KIB,
            },
            "content_types": list(self.content_types),
            "scan": self.scan,
            "versions": [v.as_dict() | {"name": v.name} for v in self.versions],
        }


@dataclass(frozen=True)
class PropertyDef:
    name: str
    type: str
    options: UploadOptions | None = None  # set exactly for upload types

    @property
    def is_upload(self) -> bool:
        return self.type in UPLOAD_TYPES

    def upload_options(self) -> UploadOptions:
        assert self.options is not None, f"{self.name} is not an upload property"
        return self.options

    @property
    def scanned(self) -> bool:
        """Its files are scanned for viruses before they are served (`scan: true`)."""
        return self.options is not None and self.options.scan


@dataclass(frozen=True)
class TableAccess:
    """Who may read and write a table's records (app/access.py applies it). The defaults keep what a
    table without `access` always had: anyone reads, signed-in callers create, owners change."""

    read: str = "public"  # public | authenticated | owner
    write: str = "owner"  # authenticated | owner


@dataclass(frozen=True)
class TableDef:
    name: str
    properties: Mapping[str, PropertyDef]
    source: str
    access: TableAccess = TableAccess()

    def upload_properties(self) -> list[PropertyDef]:
        return [p for p in self.properties.values() if p.is_upload]


def _fail(where: str, problem: str) -> SchemaError:
    return SchemaError(f"{where}: {problem}")


def _upload_options(ptype: str, raw: Any, where: str) -> UploadOptions:
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise _fail(where, "options must be a mapping")
    unknown = sorted(set(raw) - _OPTION_KEYS)
    if unknown:
        raise _fail(where, f"unknown option(s) {', '.join(unknown)}; allowed: {', '.join(sorted(_OPTION_KEYS))}")
    defaults = _DEFAULTS[ptype]
    acl = raw.get("acl", defaults["acl"])
    if acl not in ("public", "private"):
        raise _fail(where, f"acl {acl!r} must be public or private")
    disposition = raw.get("content_disposition", defaults["content_disposition"])
    if disposition not in ("inline", "attachment"):
        raise _fail(where, f"content_disposition {disposition!r} must be inline or attachment")
    if ptype == "image":
        if acl != "public":
            raise _fail(where, "image properties are always public (use type upload or attachment for private files)")
        if disposition != "inline":
            raise _fail(where, "image properties are always inline")
    cache_control = raw.get("cache_control")
    if cache_control is not None and (not isinstance(cache_control, str) or not cache_control.isprintable()):
        raise _fail(where, "cache_control must be a printable string")
    min_size, max_size = _content_length(raw.get("content_length"), where)
    types = _content_types(ptype, raw.get("content_types"), where)
    scan = raw.get("scan", False)
    if not isinstance(scan, bool):
        raise _fail(where, f"scan {scan!r} must be true or false")
    versions: tuple[VersionSpec, ...] = ()
    if "versions" in raw:
        if ptype == "attachment":
            raise _fail(where, "versions are only allowed on image and upload properties")
        try:
            versions = parse_versions(raw["versions"])
        except VersionSpecError as exc:
            raise _fail(where, str(exc)) from None
    return UploadOptions(acl, disposition, cache_control, min_size, max_size, types, versions, scan)


def _content_length(raw: Any, where: str) -> tuple[int, int | None]:
    if raw is None:
        return 0, None
    if not isinstance(raw, dict) or set(raw) - {"gte", "lte"}:
        raise _fail(where, "content_length must be a mapping with gte and/or lte (KiB)")
    gte, lte = raw.get("gte", 0), raw.get("lte")
    for label, value in (("gte", gte), ("lte", lte)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            raise _fail(where, f"content_length.{label} must be a non-negative integer (KiB), got {value!r}")
    if lte is not None and lte * KIB > MULTIPART_MAX:
        raise _fail(where, f"content_length.lte {lte} KiB is over the 5 TiB storage limit")
    if lte is not None and gte > lte:
        raise _fail(where, f"content_length.gte ({gte}) is greater than lte ({lte})")
    return gte * KIB, None if lte is None else lte * KIB


def _content_types(ptype: str, raw: Any, where: str) -> tuple[str, ...]:
    if raw is None:
        return IMAGE_CONTENT_TYPES if ptype == "image" else ()
    if not isinstance(raw, list) or not raw:
        raise _fail(where, "content_types must be a non-empty list such as [image/png, image/*]")
    out: list[str] = []
    for item in raw:
        if not isinstance(item, str) or not _CONTENT_TYPE.match(item.strip().lower()):
            raise _fail(where, f"content_types entry {item!r} is not a media type like image/png or image/*")
        value = item.strip().lower()
        if ptype == "image" and not value.startswith("image/"):
            raise _fail(where, f"content_types entry {value!r}: image properties accept only image/* types")
        if value not in out:
            out.append(value)
    return tuple(out)


def _access(raw: Any, source: str) -> TableAccess:
    where = f"{source}: access"
    if not isinstance(raw, dict):
        raise _fail(where, "must be a mapping such as {read: owner, write: owner}")
    unknown = sorted(map(str, set(raw) - {"read", "write"}))
    if unknown:
        raise _fail(where, f"unknown key(s) {', '.join(unknown)}; allowed: read, write")
    defaults = TableAccess()
    read, write = raw.get("read", defaults.read), raw.get("write", defaults.write)
    if read not in READ_RULES:
        raise _fail(where, f"read {read!r} must be one of {', '.join(READ_RULES)}")
    if write not in WRITE_RULES:
        raise _fail(where, f"write {write!r} must be one of {', '.join(WRITE_RULES)}")
    if read == "owner" and write == "authenticated":
        raise _fail(
            where,
            "write: authenticated with read: owner would let users change and delete records they cannot "
            "see; use write: owner, or read: authenticated",
        )
    return TableAccess(read, write)


def parse_table(data: Any, source: str) -> TableDef:
    """Validate one table document; `source` names the file in every message."""
    if not isinstance(data, dict):
        raise _fail(source, "the file must be a mapping with name and properties")
    unknown = sorted(map(str, set(data) - set(_TABLE_KEYS)))
    if unknown:
        raise _fail(source, f"unknown key(s) {', '.join(unknown)}; allowed: {', '.join(_TABLE_KEYS)}")
    name = data.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise _fail(source, f"name {name!r} must be lower-case letters, digits and _ (starting with a letter)")
    if name == RESERVED_TABLE:
        raise _fail(source, f"name {name!r} is reserved: storage keeps files that are not saved yet under {name}/")
    raw_props = data.get("properties") or []
    if not isinstance(raw_props, list):
        raise _fail(source, "properties must be a list")
    props: dict[str, PropertyDef] = {}
    for index, raw in enumerate(raw_props):
        where = f"{source}: properties[{index}]"
        if not isinstance(raw, dict):
            raise _fail(where, "each property must be a mapping with name and type")
        pname = raw.get("name")
        if not isinstance(pname, str) or not _NAME.match(pname):
            raise _fail(where, f"name {pname!r} must be lower-case letters, digits and _ (starting with a letter)")
        where = f"{source}: property {pname!r}"
        if pname in props:
            raise _fail(where, "is declared twice")
        extra = sorted(set(raw) - {"name", "type", "options"})
        if extra:
            raise _fail(where, f"unknown key(s) {', '.join(extra)}; allowed: name, type, options")
        ptype = raw.get("type")
        if ptype not in UPLOAD_TYPES + PLAIN_TYPES:
            raise _fail(where, f"type {ptype!r} is not one of {', '.join(UPLOAD_TYPES + PLAIN_TYPES)}")
        if ptype in UPLOAD_TYPES:
            props[pname] = PropertyDef(pname, ptype, _upload_options(ptype, raw.get("options"), where))
        else:
            if raw.get("options"):
                raise _fail(where, f"options are only allowed on {', '.join(UPLOAD_TYPES)} properties")
            props[pname] = PropertyDef(pname, ptype)
    access = _access(data["access"], source) if "access" in data else TableAccess()
    return TableDef(name, props, source, access)


def load_tables(folder: Path) -> dict[str, TableDef]:
    """Read every `*.yml`/`*.yaml` in `folder`; the first problem raises SchemaError."""
    tables: dict[str, TableDef] = {}
    files = sorted([*folder.glob("*.yml"), *folder.glob("*.yaml")])
    for path in files:
        source = str(path)
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            raise _fail(source, f"not valid YAML: {exc}") from None
        table = parse_table(data, source)
        if table.name in tables:
            raise _fail(source, f"table {table.name!r} is already declared in {tables[table.name].source}")
        tables[table.name] = table
    if not tables:
        raise SchemaError(f"{folder}: no table files (*.yml) found")
    return tables
