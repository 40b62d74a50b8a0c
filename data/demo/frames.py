"""From a layer built in metres to the GeoDataFrame the catalog declares.

Each generator returns a `Layer` (codes, field columns, metric geometries); this module is
the one place that checks the columns against the catalog, converts to WGS-84 and gives
polygon layers their MultiPolygon storage type.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import numpy as np
import shapely

from data.demo.geometry import Geoms, to_wgs84
from layers.catalog import GeometryKind, LayerSpec

Column = Any
"""A numpy array, list or pandas index of one field's values, one per row."""


@dataclass(frozen=True)
class Layer:
    """One layer in metres: human codes, declared field columns and geometries."""

    codes: Any
    columns: Mapping[str, Column]
    geoms: Geoms

    def __len__(self) -> int:
        return len(self.geoms)


def to_frame(spec: LayerSpec, layer: Layer) -> gpd.GeoDataFrame:
    """The layer as an EPSG:4326 frame with exactly: code, the catalog fields, geometry.

    Fields a generator leaves out are empty (None); a column the catalog does not declare
    is a bug in the generator and raises.
    """
    unknown = set(layer.columns) - set(spec.field_names())
    if unknown:
        raise KeyError(f"{spec.id}: columns not in the catalog: {sorted(unknown)}")
    n = len(layer)
    data: dict[str, Column] = {"code": np.asarray(layer.codes, dtype=np.str_)}
    for name in spec.field_names():
        values = layer.columns.get(name)
        if values is None:
            values = np.full(n, None, dtype=object)
        if len(values) != n:
            raise ValueError(f"{spec.id}.{name}: {len(values)} values for {n} rows")
        data[name] = values
    geoms = to_wgs84(layer.geoms)
    if spec.geometry is GeometryKind.MULTIPOLYGON:
        geoms = shapely.multipolygons(geoms, indices=np.arange(n))
    return gpd.GeoDataFrame(data, geometry=gpd.GeoSeries(geoms, crs="EPSG:4326"), crs="EPSG:4326")
