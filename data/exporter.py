"""Exporting a layer to GeoJSON, GeoPackage, zipped Shapefile or CSV.

Exports carry the code, every declared field, the free properties (as JSON
text where the format has no nested values), the grid code and, where the
layer has one, the geodesic area; the importer ignores the derived columns,
so an export re-imports as it was.  CSV is written UTF-8 with a BOM so that
Chinese Excel opens it correctly; points get lon/lat columns, other layers a
WKT column, both at full double precision.
"""

from __future__ import annotations

import json
import tempfile
import zipfile
from pathlib import Path
from typing import Literal

import geopandas as gpd
import pandas as pd
import pyogrio
import shapely
from sqlalchemy import Engine, text

from layers.catalog import GeometryKind, LayerSpec

ExportFormat = Literal["geojson", "gpkg", "shp", "csv"]
SUFFIX: dict[str, str] = {"geojson": ".geojson", "gpkg": ".gpkg", "shp": ".zip", "csv": ".csv"}


def layer_frame(engine: Engine, layer: LayerSpec) -> gpd.GeoDataFrame:
    """The whole layer as a GeoDataFrame in EPSG:4326, ordered by code."""
    fields = ", ".join(f't."{f}"' for f in layer.field_names())
    extra = ", t.area_m2" if layer.geodesic_area else ""
    grid = ", g.code AS grid_code" if layer.in_grid else ""
    join = " LEFT JOIN grids g ON g.id = t.grid_id" if layer.in_grid else ""
    sql = (
        f"SELECT t.code, {fields}, t.properties{grid}{extra}, t.geom "  # noqa: S608 (declared)
        f'FROM "{layer.table}" t{join} ORDER BY t.code'
    )
    with engine.connect() as conn:
        frame = gpd.read_postgis(text(sql), conn, geom_col="geom", crs="EPSG:4326")
    frame["properties"] = [
        json.dumps(p, ensure_ascii=False, sort_keys=True) for p in frame["properties"]
    ]
    return frame


def export_layer(engine: Engine, layer: LayerSpec, fmt: ExportFormat, out: Path) -> int:
    """Write the layer to `out`; returns the number of features written."""
    frame = layer_frame(engine, layer)
    if fmt == "csv":
        _write_csv(frame, layer, out)
    elif fmt == "shp":
        _write_zipped_shapefile(frame, layer, out)
    else:
        driver = {"geojson": "GeoJSON", "gpkg": "GPKG"}[fmt]
        options = {"COORDINATE_PRECISION": 15} if fmt == "geojson" else {}
        out.unlink(missing_ok=True)
        pyogrio.write_dataframe(frame, out, driver=driver, layer=layer.id, layer_options=options)
    return len(frame)


def _write_csv(frame: gpd.GeoDataFrame, layer: LayerSpec, out: Path) -> None:
    table = pd.DataFrame(frame.drop(columns=frame.geometry.name))
    geoms = frame.geometry.array
    if layer.geometry is GeometryKind.POINT:
        table["lon"] = shapely.get_x(geoms)
        table["lat"] = shapely.get_y(geoms)
    else:
        table["wkt"] = shapely.to_wkt(geoms, rounding_precision=-1)
    table.to_csv(out, index=False, encoding="utf-8-sig")


def _write_zipped_shapefile(frame: gpd.GeoDataFrame, layer: LayerSpec, out: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        shp = Path(tmp) / f"{layer.id}.shp"
        # Shapefile field names are cut to 10 characters; the importer maps them back.
        pyogrio.write_dataframe(frame, shp, driver="ESRI Shapefile", encoding="UTF-8")
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
            for part in sorted(Path(tmp).iterdir()):
                archive.write(part, part.name)
