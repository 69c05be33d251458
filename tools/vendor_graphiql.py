"""Copy the assets of Strawberry's GraphiQL page from the npm registry into app/static/graphiql/.

Strawberry's page loads React, GraphiQL and the explorer plugin from unpkg.com, each pinned to a
version and a Subresource Integrity hash. A deployment behind a firewall, or a developer offline,
then gets a page that says "Loading..." forever. We serve the same files ourselves instead: this
script downloads each package's tarball from the npm registry, takes the file the page names, checks
it against the page's own `integrity` hash (so what we serve is byte-for-byte what unpkg serves) and
writes it, with the package's licence, under `app/static/graphiql/<package>@<version>/`.

Run it after upgrading strawberry-graphql (`make graphiql-assets`); tests/test_graphiql_assets.py
fails until the vendored files match the installed Strawberry's page again.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
import shutil
import sys
import tarfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from strawberry.http.ides import get_graphql_ide_html

ROOT = Path(__file__).resolve().parent.parent
TARGET = ROOT / "app" / "static" / "graphiql"
REGISTRY = "https://registry.npmjs.org"
CDN = "https://unpkg.com/"
LICENCE_NAMES = ("LICENSE", "LICENSE.md", "LICENSE.txt", "license", "LICENCE")

_ASSET = re.compile(r'(?:src|href)="' + re.escape(CDN) + r'(?P<path>[^"]+)"\s+integrity="(?P<integrity>sha\d+-[^"]+)"')


@dataclass(frozen=True)
class Asset:
    package: str  # "@graphiql/plugin-explorer"
    version: str  # "1.0.2"
    file: str  # "dist/index.umd.js"
    integrity: str  # "sha384-..."

    @property
    def path(self) -> str:
        """The path after the CDN's host, which is also the path under app/static/graphiql/."""
        return f"{self.package}@{self.version}/{self.file}"


def page_assets(html: str | None = None) -> list[Asset]:
    """Every CDN asset the GraphiQL page loads, with its integrity hash."""
    html = html if html is not None else get_graphql_ide_html("graphiql")
    assets = []
    for match in _ASSET.finditer(html):
        spec, _, file = match["path"].partition("/") if not match["path"].startswith("@") else _scoped(match["path"])
        package, _, version = spec.rpartition("@")
        assets.append(Asset(package, version, file, match["integrity"]))
    return assets


def _scoped(path: str) -> tuple[str, str, str]:
    scope, name_version, file = path.split("/", 2)
    return f"{scope}/{name_version}", "/", file


def sri(data: bytes, algorithm: str = "sha384") -> str:
    return f"{algorithm}-" + base64.b64encode(hashlib.new(algorithm, data).digest()).decode()


def matches(data: bytes, integrity: str) -> bool:
    algorithm = integrity.split("-", 1)[0]
    return sri(data, algorithm) == integrity


def _fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=60) as response:
        data: bytes = response.read()
        return data


def _tarball(package: str, version: str) -> tuple[dict[str, Any], tarfile.TarFile]:
    meta = json.loads(_fetch(f"{REGISTRY}/{package.replace('/', '%2F')}/{version}"))
    data = _fetch(meta["dist"]["tarball"])
    expected = meta["dist"].get("integrity")
    if expected and not matches(data, expected):
        raise SystemExit(f"{package}@{version}: the registry's tarball does not match its integrity {expected}")
    return meta, tarfile.open(fileobj=io.BytesIO(data), mode="r:gz")


def vendor(target: Path = TARGET) -> list[Path]:
    assets = page_assets()
    if not assets:
        raise SystemExit("strawberry's GraphiQL page names no unpkg.com assets; nothing to vendor")
    if target.exists():
        shutil.rmtree(target)
    written = []
    tarballs: dict[tuple[str, str], tuple[dict[str, Any], tarfile.TarFile]] = {}
    for asset in assets:
        key = (asset.package, asset.version)
        if key not in tarballs:
            tarballs[key] = _tarball(*key)
        _, tar = tarballs[key]
        member = tar.extractfile(f"package/{asset.file}")
        if member is None:
            raise SystemExit(f"{asset.path}: not in the package's tarball")
        data = member.read()
        if not matches(data, asset.integrity):
            raise SystemExit(f"{asset.path}: does not match the page's integrity {asset.integrity}")
        out = target / asset.path
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(data)
        written.append(out)
    sources = []
    for (package, version), (meta, tar) in tarballs.items():
        licence_file = None
        for name in LICENCE_NAMES:
            try:
                licence = tar.extractfile(f"package/{name}")
            except KeyError:
                continue
            if licence is not None:
                out = target / f"{package}@{version}" / "LICENSE"
                out.write_bytes(licence.read())
                written.append(out)
                licence_file = out.relative_to(target).as_posix()
                break
        sources.append(
            {
                "package": package,
                "version": version,
                "tarball": meta["dist"]["tarball"],
                "tarball_integrity": meta["dist"].get("integrity"),
                # Some packages (the explorer plugin) declare their licence but ship no licence text.
                "license": meta.get("license"),
                "license_file": licence_file,
                "files": {a.file: a.integrity for a in assets if (a.package, a.version) == (package, version)},
            }
        )
    manifest = target / "SOURCES.json"
    manifest.write_text(json.dumps(sources, indent=2) + "\n")
    written.append(manifest)
    return written


if __name__ == "__main__":
    for path in vendor():
        print(path.relative_to(ROOT), path.stat().st_size, "bytes")
    sys.exit(0)
