"""Dependencies point inward: the use cases, the worker and the sweep speak to storage through the
protocol in app/storage/base.py, never through an SDK or an adapter (mypy checks them against it)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from app.settings import ROOT

USE_CASES = [
    *sorted((ROOT / "app" / "uploads").glob("*.py")),
    ROOT / "app" / "records.py",
    ROOT / "app" / "versions.py",
    ROOT / "app" / "sweep.py",
    ROOT / "app" / "worker.py",
    ROOT / "app" / "policy.py",
    ROOT / "app" / "keys.py",
]
ADAPTERS = (
    "aioboto3",
    "aiobotocore",
    "boto3",
    "botocore",
    "aiohttp",
    "weasyprint",
    "app.storage.s3",
    "app.storage.azure",
    "app.remote_fetch",
    "app.pdf",
)


def imported(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("path", USE_CASES, ids=lambda p: str(p.relative_to(ROOT)))
def test_use_cases_import_no_storage_sdk_or_adapter(path: Path) -> None:
    found = {n for n in imported(path) if any(n == a or n.startswith(a + ".") for a in ADAPTERS)}
    assert not found, f"{path.name} imports {sorted(found)}: use app.storage.base.Storage"
