"""Table YAML: defaults by type, and precise messages naming file, property and problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.settings import ROOT
from app.tables import IMAGE_CONTENT_TYPES, SchemaError, TableAccess, load_tables, parse_table


def table(props: str) -> dict[str, object]:
    import yaml

    loaded: dict[str, object] = yaml.safe_load(f"name: t\nproperties:\n{props}")
    return loaded


def test_shipped_examples() -> None:
    tables = load_tables(ROOT / "app" / "schema")
    resume = tables["documents"].properties["resume"].upload_options()
    assert (resume.acl, resume.content_disposition, resume.max_size) == ("private", "attachment", 5 * 1024 * 1024)
    assert "application/pdf" in resume.content_types and not resume.versions
    assert resume.scan and tables["documents"].properties["resume"].scanned  # résumés are scanned for viruses
    image = tables["photos"].properties["image"].upload_options()
    assert (image.acl, image.content_disposition) == ("public", "inline")
    assert [v.name for v in image.versions] == ["thumb", "medium", "large"]
    assert tables["documents"].access == TableAccess(read="owner", write="owner")
    assert tables["photos"].access == TableAccess(read="public", write="owner")
    assert not image.scan and not tables["photos"].properties["image"].scanned


def test_defaults_by_type() -> None:
    t = parse_table(
        table("  - {name: a, type: attachment}\n  - {name: i, type: image}\n  - {name: u, type: upload}"), "t.yml"
    )
    a, i, u = (t.properties[n].upload_options() for n in "aiu")
    assert (a.acl, a.content_disposition, a.content_types) == ("private", "attachment", ())
    assert (i.acl, i.content_disposition, i.content_types) == ("public", "inline", IMAGE_CONTENT_TYPES)
    assert (u.acl, u.content_disposition, u.content_types) == ("public", "inline", ())
    assert not (a.scan or i.scan or u.scan)  # scanning is asked for, never a default
    scanned = parse_table(table("  - {name: s, type: image, options: {scan: true}}"), "t.yml").properties["s"]
    assert scanned.scanned and scanned.upload_options().as_dict()["scan"] is True


@pytest.mark.parametrize(
    ("props", "message"),
    [
        ("  - {name: x, type: blob}", "t.yml: property 'x': type 'blob' is not one of"),
        ("  - {name: X, type: string}", "t.yml: properties[0]: name 'X' must be lower-case"),
        ("  - {name: x, type: string}\n  - {name: x, type: string}", "t.yml: property 'x': is declared twice"),
        ("  - {name: x, type: string, options: {acl: public}}", "options are only allowed on"),
        ("  - {name: x, type: attachment, options: {acl: world}}", "acl 'world' must be public or private"),
        ("  - {name: x, type: image, options: {acl: private}}", "image properties are always public"),
        (
            "  - {name: x, type: image, options: {content_disposition: attachment}}",
            "image properties are always inline",
        ),
        (
            "  - {name: x, type: upload, options: {content_length: {gte: 20, lte: 10}}}",
            "gte (20) is greater than lte (10)",
        ),
        (
            "  - {name: x, type: upload, options: {content_length: {lte: -1}}}",
            "content_length.lte must be a non-negative",
        ),
        ("  - {name: x, type: upload, options: {content_length: {lte: 9999999999}}}", "over the 5 TiB storage limit"),
        ("  - {name: x, type: upload, options: {content_types: [pdf]}}", "'pdf' is not a media type"),
        ("  - {name: x, type: image, options: {content_types: [application/pdf]}}", "accept only image/* types"),
        ("  - {name: x, type: attachment, options: {versions: []}}", "versions are only allowed on image and upload"),
        ("  - {name: x, type: upload, options: {colour: red}}", "unknown option(s) colour"),
        ("  - {name: x, type: attachment, options: {scan: 1}}", "t.yml: property 'x': scan 1 must be true or false"),
        ("  - {name: x, type: upload, options: {scan: 'true'}}", "scan 'true' must be true or false"),
        ("  - {name: x, type: string, options: {scan: true}}", "options are only allowed on"),
        (
            "  - {name: x, type: image, options: {versions: [{name: t, resize: {width: 10, fit: squash}}]}}",
            "t.yml: property 'x': versions[0].resize.fit: 'squash' is not one of",
        ),
    ],
)
def test_invalid_tables_name_file_property_and_problem(props: str, message: str) -> None:
    with pytest.raises(SchemaError) as info:
        parse_table(table(props), "t.yml")
    assert message in str(info.value)


def test_access_defaults_keep_what_a_table_without_it_always_had() -> None:
    import yaml

    assert parse_table(table("  - {name: x, type: string}"), "t.yml").access == TableAccess("public", "owner")
    for given, expected in (
        ("{read: owner}", ("owner", "owner")),
        ("{write: authenticated}", ("public", "authenticated")),
        ("{read: authenticated, write: authenticated}", ("authenticated", "authenticated")),
    ):
        data = yaml.safe_load(f"name: t\naccess: {given}\nproperties: []")
        access = parse_table(data, "t.yml").access
        assert (access.read, access.write) == expected


@pytest.mark.parametrize(
    ("access", "message"),
    [
        ("owner", "t.yml: access: must be a mapping such as {read: owner, write: owner}"),
        ("", "t.yml: access: must be a mapping"),
        ("{read: private}", "t.yml: access: read 'private' must be one of public, authenticated, owner"),
        ("{read: Owner}", "read 'Owner' must be one of"),
        ("{read: [owner]}", "read ['owner'] must be one of"),
        ("{write: public}", "t.yml: access: write 'public' must be one of authenticated, owner"),
        ("{write: true}", "write True must be one of authenticated, owner"),
        ("{read: owner, update: owner}", "t.yml: access: unknown key(s) update; allowed: read, write"),
        (
            "{read: owner, write: authenticated}",
            "t.yml: access: write: authenticated with read: owner would let users change and delete records they "
            "cannot see",
        ),
    ],
)
def test_invalid_access_names_file_and_problem(access: str, message: str) -> None:
    import yaml

    with pytest.raises(SchemaError) as info:
        parse_table(yaml.safe_load(f"name: t\naccess: {access}\nproperties: []"), "t.yml")
    assert message in str(info.value)


def test_an_unknown_table_key_names_the_allowed_ones() -> None:
    with pytest.raises(SchemaError, match=r"t\.yml: unknown key\(s\) acess; allowed: name, properties, access"):
        parse_table({"name": "t", "acess": {"read": "owner"}, "properties": []}, "t.yml")


def test_folder_problems(tmp_path: Path) -> None:
    with pytest.raises(SchemaError, match="no table files"):
        load_tables(tmp_path)
    (tmp_path / "a.yml").write_text("name: a\nproperties: [")
    with pytest.raises(SchemaError, match=r"a\.yml: not valid YAML"):
        load_tables(tmp_path)
    (tmp_path / "a.yml").write_text("name: same\n")
    (tmp_path / "b.yml").write_text("name: same\n")
    with pytest.raises(SchemaError, match="already declared"):
        load_tables(tmp_path)


def test_bad_schema_dir_stops_start_up(tmp_path: Path) -> None:
    import subprocess
    import sys

    (tmp_path / "bad.yml").write_text("name: bad\nproperties:\n  - {name: f, type: image, options: {acl: private}}\n")
    env = {"SCHEMA_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
    code = "from app.settings import Settings; from app.main import create_app; create_app(Settings.from_env())"
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=ROOT)
    assert result.returncode != 0
    assert "bad.yml: property 'f': image properties are always public" in result.stderr
