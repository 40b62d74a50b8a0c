"""Reading a vector file into a GeoDataFrame, its format told by content.

File names lie (a GeoPackage saved as .dat, a CSV as .txt), so the format is
detected from the first bytes: ZIP (zipped shapefile), SQLite (GeoPackage),
JSON (GeoJSON), otherwise CSV text.
"""

from __future__ import annotations

import json
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import pyogrio
from pyogrio.errors import DataLayerError, DataSourceError

from data.csv_table import read_csv_table
from data.problems import ProblemList


@dataclass(frozen=True)
class SourceTable:
    """A file's records, and the CRS the file itself declares (if any)."""

    frame: gpd.GeoDataFrame
    file_crs: str | None
    format: str


def detect_format(head: bytes) -> str:
    """'zip', 'gpkg', 'geojson' or 'csv' from a file's first bytes."""
    if head.startswith(b"PK\x03\x04"):
        return "zip"
    if head.startswith(b"SQLite format 3\x00"):
        return "gpkg"
    stripped = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if stripped.startswith(b"{") or stripped.startswith(b"["):
        return "geojson"
    return "csv"


def read_source(path: Path, layer_hint: str | None = None) -> SourceTable:
    """Read `path`; `layer_hint` picks a layer from a multi-layer GeoPackage."""
    problems = ProblemList(str(path))
    try:
        with path.open("rb") as fh:
            head = fh.read(64)
    except OSError as exc:
        problems.add(f"cannot read file: {exc.strerror}")
        problems.raise_if_any()
        raise
    fmt = detect_format(head)
    if fmt == "csv":
        return SourceTable(read_csv_table(path.read_bytes(), str(path)), None, "csv")
    target = str(path)
    if fmt == "zip":
        target = _shapefile_in_zip(path, problems)
    elif fmt == "geojson":
        _check_json(path, problems)
    problems.raise_if_any()
    layer = _pick_layer(target, layer_hint, problems)
    problems.raise_if_any()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            frame = pyogrio.read_dataframe(target, layer=layer, use_arrow=False)
    except (DataSourceError, DataLayerError, ValueError) as exc:
        problems.add(f"not a readable {fmt} file: {exc}")
        problems.raise_if_any()
        raise
    crs = frame.crs.to_string() if frame.crs is not None else None
    return SourceTable(frame, crs, "shapefile" if fmt == "zip" else fmt)


def _check_json(path: Path, problems: ProblemList) -> None:
    try:
        json.loads(path.read_bytes())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        problems.add(f"not valid JSON: {exc}")


def _shapefile_in_zip(path: Path, problems: ProblemList) -> str:
    try:
        with zipfile.ZipFile(path) as archive:
            names = [n for n in archive.namelist() if n.lower().endswith(".shp")]
    except zipfile.BadZipFile as exc:
        problems.add(f"not a valid ZIP archive: {exc}")
        return ""
    if len(names) != 1:
        problems.add(f"a zipped shapefile must hold exactly one .shp; found {len(names)}")
        return ""
    return f"/vsizip/{path}/{names[0]}"


def _pick_layer(target: str, hint: str | None, problems: ProblemList) -> str | int:
    try:
        layers = [str(name) for name, _ in pyogrio.list_layers(target)]
    except (DataSourceError, DataLayerError) as exc:
        problems.add(f"not a readable vector file: {exc}")
        return 0
    if len(layers) <= 1:
        return 0
    if hint in layers:
        return hint
    problems.add(f"file has several layers ({', '.join(layers)}); none is called {hint!r}")
    return 0
