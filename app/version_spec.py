"""Image version specs: the `versions:` list of an image property, parsed and validated.

Pure (stdlib only) so the table loader can reject a bad YAML file at start-up without
loading libvips. Every error names the exact path of the offending value, because the
person reading it is editing a YAML file and needs to find the line.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypeVar

MAX_VERSIONS = 10
MAX_DIMENSION = 10_000
MAX_BLUR = 1000.0

FITS = ("cover", "contain", "fill", "inside", "outside")
POSITIONS = (
    "center",
    "top",
    "right_top",
    "right",
    "right_bottom",
    "bottom",
    "left_bottom",
    "left",
    "left_top",
    "entropy",
    "attention",
)
FORMATS = ("webp", "jpeg", "png", "avif")
DEFAULT_QUALITY = {"jpeg": 85, "webp": 80, "png": 80, "avif": 60}
# Interlacing exists only in these encoders; asking for it elsewhere is a mistake worth reporting.
PROGRESSIVE_FORMATS = ("jpeg", "png")

_EXTENSIONS = {"webp": "webp", "jpeg": "jpg", "png": "png", "avif": "avif"}
_CONTENT_TYPES = {"webp": "image/webp", "jpeg": "image/jpeg", "png": "image/png", "avif": "image/avif"}

_NAME = re.compile(r"[a-z0-9_]{1,40}")
_HEX = re.compile(r"#(?:[0-9a-f]{3}|[0-9a-f]{6}|[0-9a-f]{8})", re.IGNORECASE)

_VERSION_KEYS = ("name", "resize", "output", "manipulate")
_RESIZE_KEYS = ("width", "height", "fit", "position", "background", "without_enlargement")
_OUTPUT_KEYS = ("format", "quality", "progressive")
_MANIPULATE_KEYS = ("greyscale", "blur", "flatten")

_T = TypeVar("_T")


class VersionSpecError(ValueError):
    """A `versions:` entry is invalid; the message is "<path>: <problem>"."""


@dataclass(frozen=True)
class ResizeSpec:
    width: int | None
    height: int | None
    fit: str
    position: str
    background: str | None
    without_enlargement: bool


@dataclass(frozen=True)
class OutputSpec:
    format: str
    quality: int
    progressive: bool


@dataclass(frozen=True)
class ManipulateSpec:
    greyscale: bool
    blur: float
    flatten: str | None


@dataclass(frozen=True)
class VersionSpec:
    name: str
    resize: ResizeSpec
    output: OutputSpec
    manipulate: ManipulateSpec

    def digest(self) -> str:
        """12 hex chars identifying the transformation, so equal specs share a storage key."""
        recipe = self.as_dict()
        del recipe["name"]
        canonical = json.dumps(recipe, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:12]

    def as_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "resize": _fields(self.resize, _RESIZE_KEYS),
            "output": _fields(self.output, _OUTPUT_KEYS),
            "manipulate": _fields(self.manipulate, _MANIPULATE_KEYS),
        }

    @property
    def extension(self) -> str:
        return _EXTENSIONS[self.output.format]

    @property
    def content_type(self) -> str:
        return _CONTENT_TYPES[self.output.format]


def parse_versions(raw: object) -> tuple[VersionSpec, ...]:
    """Parse the YAML value of `versions:` (None means no versions)."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise VersionSpecError(f"versions: must be a list, not {_kind(raw)}")
    if len(raw) > MAX_VERSIONS:
        raise VersionSpecError(f"versions: at most {MAX_VERSIONS} versions are allowed, got {len(raw)}")
    specs = tuple(_version(item, f"versions[{i}]") for i, item in enumerate(raw))
    _reject_duplicate_names(specs)
    return specs


def _reject_duplicate_names(specs: tuple[VersionSpec, ...]) -> None:
    first_index: dict[str, int] = {}
    for i, spec in enumerate(specs):
        if spec.name in first_index:
            raise VersionSpecError(
                f"versions[{i}].name: {spec.name!r} is already used by versions[{first_index[spec.name]}]"
            )
        first_index[spec.name] = i


def _version(raw: object, path: str) -> VersionSpec:
    fields = _mapping(raw, path, _VERSION_KEYS)
    if "name" not in fields:
        raise VersionSpecError(f"{path}.name: is required")
    if fields.get("resize") is None:
        raise VersionSpecError(f"{path}.resize: is required (give width, height or both)")
    return VersionSpec(
        name=_name(fields["name"], f"{path}.name"),
        resize=_resize(_section(fields, "resize", path), f"{path}.resize"),
        output=_output(_section(fields, "output", path), f"{path}.output"),
        manipulate=_manipulate(_section(fields, "manipulate", path), f"{path}.manipulate"),
    )


def _name(raw: object, path: str) -> str:
    name = _typed(raw, str, "a string", path)
    if not _NAME.fullmatch(name):
        raise VersionSpecError(f"{path}: {name!r} must be 1-40 characters of a-z, 0-9 and _")
    return name


def _resize(fields: Mapping[str, object], path: str) -> ResizeSpec:
    width = _dimension(fields.get("width"), f"{path}.width")
    height = _dimension(fields.get("height"), f"{path}.height")
    if width is None and height is None:
        raise VersionSpecError(f"{path}: needs width, height or both")
    return ResizeSpec(
        width=width,
        height=height,
        fit=_choice(fields.get("fit", "cover"), FITS, f"{path}.fit"),
        position=_choice(fields.get("position", "center"), POSITIONS, f"{path}.position"),
        background=_optional_colour(fields.get("background"), f"{path}.background"),
        without_enlargement=_bool(fields.get("without_enlargement", False), f"{path}.without_enlargement"),
    )


def _output(fields: Mapping[str, object], path: str) -> OutputSpec:
    fmt = _choice(fields.get("format", "webp"), FORMATS, f"{path}.format")
    progressive = _bool(fields.get("progressive", False), f"{path}.progressive")
    if progressive and fmt not in PROGRESSIVE_FORMATS:
        raise VersionSpecError(f"{path}.progressive: only applies to jpeg and png, not {fmt}")
    quality = _int_in_range(fields.get("quality", DEFAULT_QUALITY[fmt]), 1, 100, f"{path}.quality")
    return OutputSpec(format=fmt, quality=quality, progressive=progressive)


def _manipulate(fields: Mapping[str, object], path: str) -> ManipulateSpec:
    return ManipulateSpec(
        greyscale=_bool(fields.get("greyscale", False), f"{path}.greyscale"),
        blur=_blur(fields.get("blur", 0), f"{path}.blur"),
        flatten=_optional_colour(fields.get("flatten"), f"{path}.flatten"),
    )


def _section(fields: Mapping[str, object], key: str, path: str) -> Mapping[str, object]:
    allowed = {"resize": _RESIZE_KEYS, "output": _OUTPUT_KEYS, "manipulate": _MANIPULATE_KEYS}[key]
    raw = fields.get(key)
    # An empty YAML block (`manipulate:` with nothing under it) loads as None: treat as "all defaults".
    return {} if raw is None else _mapping(raw, f"{path}.{key}", allowed)


def _mapping(raw: object, path: str, allowed: tuple[str, ...]) -> Mapping[str, object]:
    if not isinstance(raw, Mapping):
        raise VersionSpecError(f"{path}: must be a mapping, not {_kind(raw)}")
    for key in raw:
        if key not in allowed:
            raise VersionSpecError(f"{path}: unknown key {key!r} (allowed: {', '.join(allowed)})")
    return raw


def _dimension(raw: object, path: str) -> int | None:
    return None if raw is None else _int_in_range(raw, 1, MAX_DIMENSION, path)


def _int_in_range(raw: object, low: int, high: int, path: str) -> int:
    value = _typed(raw, int, "an integer", path)
    if not low <= value <= high:
        raise VersionSpecError(f"{path}: {value} is out of range {low}..{high}")
    return value


def _blur(raw: object, path: str) -> float:
    if isinstance(raw, bool) or not isinstance(raw, (int, float)):
        raise VersionSpecError(f"{path}: must be a number, not {_kind(raw)}")
    if not 0 <= raw <= MAX_BLUR:  # also rejects NaN
        raise VersionSpecError(f"{path}: {raw} is out of range 0..{MAX_BLUR:g}")
    return float(raw)


def _bool(raw: object, path: str) -> bool:
    return _typed(raw, bool, "a boolean (true or false)", path)


def _choice(raw: object, allowed: tuple[str, ...], path: str) -> str:
    value = _typed(raw, str, "a string", path)
    if value not in allowed:
        raise VersionSpecError(f"{path}: {value!r} is not one of {', '.join(allowed)}")
    return value


def _optional_colour(raw: object, path: str) -> str | None:
    if raw is None:
        return None
    value = _typed(raw, str, "a string", path)
    if not _HEX.fullmatch(value):
        raise VersionSpecError(f"{path}: {value!r} is not a hex colour like #rgb, #rrggbb or #rrggbbaa")
    return _normalise_colour(value)


def _normalise_colour(value: str) -> str:
    """Lower-case #rrggbb[aa], so "#FFF" and "#ffffff" give the same digest."""
    digits = value[1:].lower()
    if len(digits) == 3:
        digits = "".join(c * 2 for c in digits)
    if digits.endswith("ff") and len(digits) == 8:
        digits = digits[:6]
    return "#" + digits


def _typed(raw: object, kind: type[_T], described: str, path: str) -> _T:
    # bool is a subclass of int; YAML `width: yes` must not become width 1.
    if not isinstance(raw, kind) or (kind is not bool and isinstance(raw, bool)):
        raise VersionSpecError(f"{path}: must be {described}, not {_kind(raw)}")
    return raw


def _kind(raw: object) -> str:
    """The YAML name of a value's type, for error messages aimed at YAML authors."""
    if raw is None:
        return "null"
    for python_type, yaml_name in (
        (bool, "boolean"),
        (int, "integer"),
        (float, "float"),
        (str, "string"),
        (list, "list"),
        (Mapping, "mapping"),
    ):
        if isinstance(raw, python_type):
            return f"{yaml_name} {raw!r}" if python_type in (bool, int, float, str) else yaml_name
    return type(raw).__name__


def _fields(section: object, keys: tuple[str, ...]) -> dict[str, object]:
    return {key: getattr(section, key) for key in keys}
