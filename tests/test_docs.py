"""The docs site builds with `mkdocs build --strict` (no broken link or anchor, every page in the
navigation), and what it generates covers every setting, error code and GraphQL field there is; the
README stays short. Settings are documented in one place only: the generated table."""

from __future__ import annotations

import html
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from graphql import build_schema

from app.settings import ROOT, describe
from tools import docs_generate


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site")
    build = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert build.returncode == 0, f"mkdocs build --strict failed:\n{build.stdout}\n{build.stderr}"
    assert "WARNING" not in build.stderr, build.stderr
    return out


def page(site: Path, name: str) -> str:
    return html.unescape((site / name / "index.html").read_text())


def test_every_setting_is_in_the_built_settings_table(site: Path) -> None:
    built = page(site, "settings")
    for row in describe():
        for name in row.env.split(" / "):
            assert f"<code>{name}</code>" in built, f"{name} is missing from the settings page"
        if row.default:
            assert f"<code>{row.default}</code>" in built, f"the default of {row.env} is missing"
        assert row.doc.split("`")[0].strip() in built


def test_every_error_code_is_in_the_built_error_page(site: Path) -> None:
    built = page(site, "errors")
    classes = docs_generate.error_classes()
    assert len(classes) >= 20
    for error in classes:
        assert f"<code>{error.code}</code>" in built, f"{error.__name__} ({error.code}) is missing"  # type: ignore[attr-defined]


def test_every_field_and_type_of_the_schema_is_in_the_built_reference(site: Path) -> None:
    built = page(site, "graphql")
    schema = build_schema((ROOT / "schema.graphql").read_text())
    roots = (
        ("query", schema.query_type),
        ("mutation", schema.mutation_type),
        ("subscription", schema.subscription_type),
    )
    for kind, root in roots:
        assert root is not None
        for name, field in root.fields.items():
            assert f'id="{kind}-{name}"' in built, f"{kind} {name} is missing"
            for argument in field.args:
                assert f"<code>{argument}</code>" in built
    for name in schema.type_map:
        if not name.startswith("__") and name not in docs_generate.BUILT_IN_SCALARS | {
            "Query",
            "Mutation",
            "Subscription",
        }:
            assert f'id="{name}"' in built, f"type {name} is missing"


def test_security_page_includes_security_md(site: Path) -> None:
    built = page(site, "security")
    for heading in re.findall(r"^## (.+)$", (ROOT / "SECURITY.md").read_text(), re.MULTILINE):
        assert heading in built


def test_settings_are_documented_only_in_the_generated_table() -> None:
    """No page (nor the README) has a table row of its own for a setting."""
    names = set(docs_generate.setting_names())
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    for path in pages:
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            if line.startswith("|"):
                first = line.strip("|").split("|")[0].strip().strip("`")
                assert first not in names, (
                    f"{path.relative_to(ROOT)}:{number} documents {first} by hand; every setting is described "
                    "once, in app/settings.py, and the docs' settings page is generated from it"
                )


def test_an_unknown_generated_block_is_an_error() -> None:
    with pytest.raises(docs_generate.GenerationError, match="no generated block named 'nope'"):
        docs_generate.expand("# Page\n\n<!-- generated: nope -->\n", "page.md")


def test_readme_is_short_and_its_links_exist() -> None:
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) < 200
    links = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", readme)
    local = [link for link in links if not link.startswith(("http://", "https://"))]
    assert local, "the README links to the docs"
    for link in local:
        assert (ROOT / link).exists(), f"README.md links to {link}, which does not exist"
