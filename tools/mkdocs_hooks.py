"""MkDocs hooks (named in mkdocs.yml): fill in the generated blocks of each page (tools/docs_generate.py).

The repository root goes first on sys.path, so the docs describe the `app` of the tree being built,
whichever way mkdocs was started.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from mkdocs.exceptions import PluginError  # noqa: E402

from tools import docs_generate  # noqa: E402


def on_pre_build(config: Any) -> None:
    docs_generate.reload_sources()


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    try:
        return docs_generate.expand(markdown, page.file.src_path)
    except docs_generate.GenerationError as exc:
        raise PluginError(str(exc)) from exc
