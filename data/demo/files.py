"""Writing the demo city as one vector file per layer, the form the importer reads."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import geopandas as gpd
import pyogrio

SUFFIXES: dict[str, str] = {"GPKG": ".gpkg", "GeoJSON": ".geojson", "FlatGeobuf": ".fgb"}


def write_city_files(
    city: Mapping[str, gpd.GeoDataFrame], directory: Path, driver: str = "GPKG"
) -> dict[str, Path]:
    """Write each layer to `directory/<layer id><suffix>`; returns layer id -> path.

    Existing files are replaced.  GeoJSON keeps full coordinate precision, so a file
    re-imports to the same geometry.
    """
    if driver not in SUFFIXES:
        raise ValueError(f"unsupported driver {driver!r}; one of {', '.join(SUFFIXES)}")
    directory.mkdir(parents=True, exist_ok=True)
    options = {"COORDINATE_PRECISION": 15} if driver == "GeoJSON" else {}
    paths: dict[str, Path] = {}
    for layer_id, frame in city.items():
        path = directory / f"{layer_id}{SUFFIXES[driver]}"
        path.unlink(missing_ok=True)
        pyogrio.write_dataframe(frame, path, layer=layer_id, driver=driver, layer_options=options)
        paths[layer_id] = path
    return paths
