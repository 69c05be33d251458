"""The `versions:` parser: defaults, canonical form, and the exact error a YAML author sees."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

from app.version_spec import (
    MAX_VERSIONS,
    ManipulateSpec,
    OutputSpec,
    ResizeSpec,
    VersionSpec,
    VersionSpecError,
    parse_versions,
)

THUMB: dict[str, Any] = {
    "name": "thumb",
    "resize": {
        "width": 200,
        "height": 200,
        "fit": "cover",
        "position": "center",
        "background": "#ffffff",
        "without_enlargement": True,
    },
    "output": {"format": "webp", "quality": 80},
    "manipulate": {"greyscale": False, "blur": 0, "flatten": "#ffffff"},
}


def one(raw: dict[str, Any]) -> VersionSpec:
    (spec,) = parse_versions([raw])
    return spec


def error_for(raw: object) -> str:
    with pytest.raises(VersionSpecError) as caught:
        parse_versions(raw)
    return str(caught.value)


def test_the_spec_example_parses_into_dataclasses() -> None:
    assert one(THUMB) == VersionSpec(
        name="thumb",
        resize=ResizeSpec(
            width=200, height=200, fit="cover", position="center", background="#ffffff", without_enlargement=True
        ),
        output=OutputSpec(format="webp", quality=80, progressive=False),
        manipulate=ManipulateSpec(greyscale=False, blur=0.0, flatten="#ffffff"),
    )


def test_minimal_version_is_fully_defaulted() -> None:
    spec = one({"name": "small", "resize": {"width": 320}})
    assert spec.as_dict() == {
        "name": "small",
        "resize": {
            "width": 320,
            "height": None,
            "fit": "cover",
            "position": "center",
            "background": None,
            "without_enlargement": False,
        },
        "output": {"format": "webp", "quality": 80, "progressive": False},
        "manipulate": {"greyscale": False, "blur": 0.0, "flatten": None},
    }
    assert json.loads(json.dumps(spec.as_dict())) == spec.as_dict()


def test_empty_yaml_blocks_mean_defaults() -> None:
    spec = one({"name": "a", "resize": {"height": 10}, "output": None, "manipulate": None})
    assert spec.output == OutputSpec(format="webp", quality=80, progressive=False)
    assert spec.manipulate == ManipulateSpec(greyscale=False, blur=0.0, flatten=None)


@pytest.mark.parametrize(
    ("fmt", "quality", "extension", "content_type"),
    [
        ("jpeg", 85, "jpg", "image/jpeg"),
        ("webp", 80, "webp", "image/webp"),
        ("png", 80, "png", "image/png"),
        ("avif", 60, "avif", "image/avif"),
    ],
)
def test_quality_default_extension_and_content_type_per_format(
    fmt: str, quality: int, extension: str, content_type: str
) -> None:
    spec = one({"name": "a", "resize": {"width": 10}, "output": {"format": fmt}})
    assert (spec.output.quality, spec.extension, spec.content_type) == (quality, extension, content_type)


def test_none_means_no_versions() -> None:
    assert parse_versions(None) == ()


def test_ten_versions_are_allowed() -> None:
    raw = [{"name": f"v{i}", "resize": {"width": 10 + i}} for i in range(MAX_VERSIONS)]
    assert [spec.name for spec in parse_versions(raw)] == [f"v{i}" for i in range(10)]


def test_blur_accepts_integers_and_floats() -> None:
    assert one({"name": "a", "resize": {"width": 1}, "manipulate": {"blur": 3}}).manipulate.blur == 3.0
    assert one({"name": "a", "resize": {"width": 1}, "manipulate": {"blur": 0.5}}).manipulate.blur == 0.5


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("#FFF", "#ffffff"),
        ("#AbCdEf", "#abcdef"),
        ("#11223344", "#11223344"),
        ("#112233FF", "#112233"),
    ],
)
def test_colours_are_normalised(given: str, stored: str) -> None:
    spec = one({"name": "a", "resize": {"width": 1, "background": given}, "manipulate": {"flatten": given}})
    assert (spec.resize.background, spec.manipulate.flatten) == (stored, stored)


def test_digest_is_12_hex_chars_and_stable_across_runs() -> None:
    # Pinned: version keys in storage are derived from it, so a change here orphans every version.
    canonical = (
        '{"manipulate":{"blur":0.0,"flatten":"#ffffff","greyscale":false},'
        '"output":{"format":"webp","progressive":false,"quality":80},'
        '"resize":{"background":"#ffffff","fit":"cover","height":200,"position":"center",'
        '"width":200,"without_enlargement":true}}'
    )
    assert hashlib.sha256(canonical.encode()).hexdigest()[:12] == "5ef9a15002c3"
    assert one(THUMB).digest() == "5ef9a15002c3"


def test_digest_ignores_the_name_and_equivalent_spellings() -> None:
    renamed = {**THUMB, "name": "other"}
    spelled = {**THUMB, "resize": {**THUMB["resize"], "background": "#FFF"}, "output": {"format": "webp"}}
    assert one(THUMB).digest() == one(renamed).digest() == one(spelled).digest()


@pytest.mark.parametrize(
    ("section", "key", "value"),
    [
        ("resize", "width", 201),
        ("resize", "fit", "inside"),
        ("resize", "position", "top"),
        ("resize", "background", "#000000"),
        ("resize", "without_enlargement", False),
        ("output", "format", "jpeg"),
        ("output", "quality", 81),
        ("manipulate", "greyscale", True),
        ("manipulate", "blur", 0.5),
        ("manipulate", "flatten", None),
    ],
)
def test_digest_changes_with_every_setting(section: str, key: str, value: object) -> None:
    changed = {**THUMB, section: {**THUMB[section], key: value}}
    assert one(changed).digest() != one(THUMB).digest()


def test_specs_are_frozen() -> None:
    spec = one(THUMB)
    with pytest.raises(AttributeError):
        spec.name = "x"  # type: ignore[misc]


def resize(**fields: object) -> list[dict[str, object]]:
    return [{"name": "a", "resize": {"width": 100, **fields}}]


def output(**fields: object) -> list[dict[str, object]]:
    return [{"name": "a", "resize": {"width": 100}, "output": fields}]


def manipulate(**fields: object) -> list[dict[str, object]]:
    return [{"name": "a", "resize": {"width": 100}, "manipulate": fields}]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"name": "a"}, "versions: must be a list, not mapping"),
        ("thumb", "versions: must be a list, not string 'thumb'"),
        (
            [{"name": f"v{i}", "resize": {"width": 1}} for i in range(11)],
            "versions: at most 10 versions are allowed, got 11",
        ),
        (["thumb"], "versions[0]: must be a mapping, not string 'thumb'"),
        (
            [{"name": "a", "resize": {"width": 1}, "size": 3}],
            "versions[0]: unknown key 'size' (allowed: name, resize, output, manipulate)",
        ),
        ([{"resize": {"width": 1}}], "versions[0].name: is required"),
        (
            [{"name": "Thumb", "resize": {"width": 1}}],
            "versions[0].name: 'Thumb' must be 1-40 characters of a-z, 0-9 and _",
        ),
        (
            [{"name": "a" * 41, "resize": {"width": 1}}],
            f"versions[0].name: {'a' * 41!r} must be 1-40 characters of a-z, 0-9 and _",
        ),
        ([{"name": 7, "resize": {"width": 1}}], "versions[0].name: must be a string, not integer 7"),
        (
            [
                {"name": "a", "resize": {"width": 1}},
                {"name": "b", "resize": {"width": 1}},
                {"name": "a", "resize": {"width": 2}},
            ],
            "versions[2].name: 'a' is already used by versions[0]",
        ),
        ([{"name": "a"}], "versions[0].resize: is required (give width, height or both)"),
        ([{"name": "a", "resize": [200]}], "versions[0].resize: must be a mapping, not list"),
        ([{"name": "a", "resize": {"fit": "cover"}}], "versions[0].resize: needs width, height or both"),
        (
            resize(depth=3),
            (
                "versions[0].resize: unknown key 'depth' (allowed: width, height, fit, position, background, "
                "without_enlargement)"
            ),
        ),
        (resize(width=0), "versions[0].resize.width: 0 is out of range 1..10000"),
        (resize(height=10001), "versions[0].resize.height: 10001 is out of range 1..10000"),
        (resize(width="200"), "versions[0].resize.width: must be an integer, not string '200'"),
        (resize(width=200.0), "versions[0].resize.width: must be an integer, not float 200.0"),
        (resize(width=True), "versions[0].resize.width: must be an integer, not boolean True"),
        (resize(fit="squash"), "versions[0].resize.fit: 'squash' is not one of cover, contain, fill, inside, outside"),
        (
            resize(position="middle"),
            (
                "versions[0].resize.position: 'middle' is not one of center, top, right_top, right, right_bottom, "
                "bottom, left_bottom, left, left_top, entropy, attention"
            ),
        ),
        (
            resize(background="white"),
            "versions[0].resize.background: 'white' is not a hex colour like #rgb, #rrggbb or #rrggbbaa",
        ),
        (
            resize(background="#12345"),
            "versions[0].resize.background: '#12345' is not a hex colour like #rgb, #rrggbb or #rrggbbaa",
        ),
        (
            resize(without_enlargement="yes"),
            "versions[0].resize.without_enlargement: must be a boolean (true or false), not string 'yes'",
        ),
        (
            resize(without_enlargement=1),
            "versions[0].resize.without_enlargement: must be a boolean (true or false), not integer 1",
        ),
        (output(format="gif"), "versions[0].output.format: 'gif' is not one of webp, jpeg, png, avif"),
        (output(quality=0), "versions[0].output.quality: 0 is out of range 1..100"),
        (output(quality=101), "versions[0].output.quality: 101 is out of range 1..100"),
        (output(quality=None), "versions[0].output.quality: must be an integer, not null"),
        (output(progressive=True), "versions[0].output.progressive: only applies to jpeg and png, not webp"),
        (output(lossless=True), "versions[0].output: unknown key 'lossless' (allowed: format, quality, progressive)"),
        (manipulate(blur=-1), "versions[0].manipulate.blur: -1 is out of range 0..1000"),
        (manipulate(blur=1000.5), "versions[0].manipulate.blur: 1000.5 is out of range 0..1000"),
        (manipulate(blur=float("nan")), "versions[0].manipulate.blur: nan is out of range 0..1000"),
        (manipulate(blur=False), "versions[0].manipulate.blur: must be a number, not boolean False"),
        (
            manipulate(greyscale="true"),
            "versions[0].manipulate.greyscale: must be a boolean (true or false), not string 'true'",
        ),
        (manipulate(flatten=True), "versions[0].manipulate.flatten: must be a string, not boolean True"),
        (manipulate(sharpen=1), "versions[0].manipulate: unknown key 'sharpen' (allowed: greyscale, blur, flatten)"),
    ],
)
def test_errors_name_the_path_and_the_problem(raw: object, message: str) -> None:
    assert error_for(raw) == message


def test_errors_point_at_the_right_entry() -> None:
    raw = [THUMB, {**THUMB, "name": "big", "resize": {"width": 10, "fit": "squash"}}]
    assert error_for(raw).startswith("versions[1].resize.fit: 'squash'")


def test_error_is_a_value_error() -> None:
    assert issubclass(VersionSpecError, ValueError)
