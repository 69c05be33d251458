"""The frontend recipes of the docs site (docs/frontend.md, and docs/azure.md's), read as they are
written, so the tests run exactly what a reader copies."""

from __future__ import annotations

import re
from pathlib import Path

from app.settings import ROOT

PAGE = ROOT / "docs" / "frontend.md"
_SECTION = re.compile(r"^## (?P<title>[^{\n]+?)\s*(?:\{ #(?P<id>[\w-]+) \})?$", re.MULTILINE)


def section(anchor: str, page: Path = PAGE) -> str:
    """The text of the `## ... { #anchor }` section of `page`, up to the next `## `."""
    text = page.read_text()
    starts = list(_SECTION.finditer(text))
    for i, match in enumerate(starts):
        if match.group("id") == anchor:
            end = starts[i + 1].start() if i + 1 < len(starts) else len(text)
            return text[match.end() : end]
    raise AssertionError(f"{page} has no section {{ #{anchor} }}; the recipe tests read it")


def recipe(anchor: str, language: str = "js", page: Path = PAGE) -> str:
    """The first ```{language} block of that section."""
    body = section(anchor, page)
    fence = f"```{language}\n"
    assert fence in body, f"section #{anchor} of {page} has no {language} block"
    start = body.index(fence) + len(fence)
    return body[start : body.index("```", start)]
