"""Every script, stylesheet and image the map loads, served by the app itself.

Government networks (政务内网) have no internet, so nothing may come from a CDN.
Third-party files are never committed; they come from package managers:

- Leaflet from PyPI (`xstatic-leaflet`, installed with the package);
- Leaflet.VectorGrid from npm (`map_ui/js/package.json`, `npm ci --prefix map_ui/js`,
  run by `./dev`);
- our own code in `map_ui/static/`.

A page references assets only through `url()`, under `STATIC_URL`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import xstatic.pkg.leaflet as xstatic_leaflet

STATIC_URL = "/map/static"
PACKAGE_DIR = Path(__file__).parent
NODE_MODULES = PACKAGE_DIR / "js" / "node_modules"


@dataclass(frozen=True)
class AssetRoot:
    """A directory served under `STATIC_URL/<name>/`, and how it gets installed."""

    name: str
    directory: Path
    installed_by: str


ROOTS: dict[str, AssetRoot] = {
    root.name: root
    for root in (
        AssetRoot("leaflet", Path(xstatic_leaflet.BASE_DIR), "pip install xstatic-leaflet"),
        AssetRoot(
            "vectorgrid",
            NODE_MODULES / "leaflet.vectorgrid" / "dist",
            "npm ci --prefix map_ui/js (./dev does it)",
        ),
        AssetRoot("civic", PACKAGE_DIR / "static", "the civic-gis package"),
    )
}

SCRIPTS: tuple[str, ...] = (
    "leaflet/leaflet.js",
    "vectorgrid/Leaflet.VectorGrid.bundled.min.js",
    "civic/gcj02.js",
    "civic/civic_map.js",
)
"""Scripts of every map page, in load order."""

STYLESHEETS: tuple[str, ...] = ("leaflet/leaflet.css", "civic/civic_map.css")
"""Stylesheets of every map page."""

MEDIA_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".png": "image/png",
    ".svg": "image/svg+xml",
    ".map": "application/json",
}


def url(path: str) -> str:
    """The URL path of an asset given as `<root>/<file>`."""
    return f"{STATIC_URL}/{path}"


def resolve(path: str) -> Path | None:
    """The file behind `<root>/<file>`, or None (unknown root, missing file, or `..` tricks)."""
    root_name, _, rest = path.partition("/")
    root = ROOTS.get(root_name)
    if root is None or not rest:
        return None
    base = root.directory.resolve()
    candidate = (base / rest).resolve()
    if not candidate.is_relative_to(base) or not candidate.is_file():
        return None
    if candidate.suffix not in MEDIA_TYPES:
        return None
    return candidate


def media_type(path: Path) -> str:
    """The Content-Type of a served asset."""
    return MEDIA_TYPES[path.suffix]


def missing() -> list[str]:
    """Page assets that are not installed, each with the command that installs it."""
    return [
        f"{path} (install: {ROOTS[path.partition('/')[0]].installed_by})"
        for path in (*SCRIPTS, *STYLESHEETS)
        if resolve(path) is None
    ]
