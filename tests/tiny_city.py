"""A tiny, exact geography in Mudanjiang whose right answers are known.

Built in metres on CGCS2000 Gauss-Kruger CM 129E (EPSG:4552) around an
origin at 129.60E 44.58N, then converted to WGS-84: one district, one street
office, one community 400 m x 200 m split into two 200 m x 200 m grids (west
001, east 002), a main road along y = 100 m, lamps every 30 m on it (one
unlit), a school, an internet café 150 m from the school, etc.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pyogrio
import shapely
from pyproj import Transformer
from shapely.geometry import LineString, Point, Polygon, box

DISTRICT = "231005000000000"
STREET = "231005001000000"
COMMUNITY = "231005001001000"
GRID_WEST = "231005001001001"
GRID_EAST = "231005001001002"

_to_metric = Transformer.from_crs("EPSG:4326", "EPSG:4552", always_xy=True)
_to_wgs = Transformer.from_crs("EPSG:4552", "EPSG:4326", always_xy=True)
ORIGIN = _to_metric.transform(129.60, 44.58)


def wgs(geom: Any) -> Any:
    """A geometry given in metres from the origin, in WGS-84."""
    return shapely.transform(
        geom,
        lambda xy: np.column_stack(_to_wgs.transform(xy[:, 0] + ORIGIN[0], xy[:, 1] + ORIGIN[1])),
    )


def frame(rows: list[dict[str, Any]]) -> gpd.GeoDataFrame:
    """A WGS-84 GeoDataFrame from rows whose 'geometry' is in local metres."""
    return gpd.GeoDataFrame(
        [{k: v for k, v in r.items() if k != "geometry"} for r in rows],
        geometry=[wgs(r["geometry"]) for r in rows],
        crs="EPSG:4326",
    )


def tiny_city() -> dict[str, gpd.GeoDataFrame]:
    """Every layer of the tiny city, keyed by layer id, in import order."""
    whole = box(0, 0, 400, 200)
    grids = frame(
        [
            {"code": DISTRICT, "level": "district", "name": "西安区", "geometry": whole},
            {
                "code": STREET,
                "level": "street",
                "name": "先锋街道",
                "parent_code": DISTRICT,
                "geometry": whole,
            },
            {
                "code": COMMUNITY,
                "level": "community",
                "name": "立新社区",
                "parent_code": STREET,
                "geometry": whole,
            },
            {
                "code": GRID_WEST,
                "level": "grid",
                "name": "立新社区第1网格",
                "parent_code": COMMUNITY,
                "officer": "王丹",
                "officer_phone": "13800000001",
                "geometry": box(0, 0, 200, 200),
            },
            {
                "code": GRID_EAST,
                "level": "grid",
                "name": "立新社区第2网格",
                "parent_code": COMMUNITY,
                "officer": "齐妍爽",
                "geometry": box(200, 0, 400, 200),
            },
        ]
    )
    roads = frame(
        [
            {
                "code": "RD-1",
                "name": "光华街",
                "road_class": "main",
                "geometry": LineString([(0, 100), (400, 100)]),
            },
            {
                "code": "RD-2",
                "name": "西长安街",
                "road_class": "back_street",
                "geometry": LineString([(300, 0), (300, 200)]),
            },
        ]
    )
    lamps = frame(
        [
            {
                "code": f"L-{i:04d}",
                "road_code": "RD-1",
                "pole_height_m": 10.0,
                "light_distribution": "cut_off",
                "status": "unlit" if i == 3 else "lit",
                "component_code": f"2310050110{i:06d}",
                "last_inspected": "2026-11-20T08:30:00+08:00",
                "geometry": Point(15 + 30 * i, 104),
            }
            for i in range(12)
        ]
    )
    bins = frame(
        [
            {
                "code": "B-1",
                "kind": "litter_bin",
                "condition": "good",
                "road_code": "RD-1",
                "geometry": Point(50, 96),
            },
            {
                "code": "B-2",
                "kind": "collection_point",
                "condition": "damaged",
                "geometry": Point(250, 150),
            },
        ]
    )
    schools = frame(
        [
            {
                "code": "SCH-1",
                "name": "西安区第一小学",
                "school_type": "primary",
                "geometry": box(20, 130, 80, 190),
            },
        ]
    )
    venues = frame(
        [
            {
                "code": "V-1",
                "name": "极速网吧",
                "venue_type": "internet_cafe",
                "licence": "WB-001",
                "opened_on": "2025-03-01",
                "geometry": Point(230, 160),
            },
        ]
    )
    illegal = frame(
        [
            {
                "code": "WJ-1",
                "status": "verified",
                "discovered_on": "2026-10-01",
                "deadline": "2026-10-29",
                "geometry": box(150, 20, 160, 30),
            },
        ]
    )
    signage = frame(
        [
            {
                "code": "S-1",
                "kind": "core_values",
                "fixed": True,
                "condition": "good",
                "geometry": Point(60, 128),
            },
        ]
    )
    compounds = frame(
        [
            {
                "code": "XQ-1",
                "name": "立新小区",
                "residential": True,
                "households": 120,
                "geometry": box(220, 120, 380, 195),
            },
        ]
    )
    buildings = frame(
        [
            {
                "code": "BLD-1",
                "name": "1号楼",
                "compound_code": "XQ-1",
                "residential": True,
                "households": 60,
                "floors": 6,
                "geometry": Polygon([(240, 140), (280, 140), (280, 160), (240, 160)]),
            },
        ]
    )
    entrances = frame(
        [
            {
                "code": "E-1",
                "owner_layer": "schools",
                "owner_code": "SCH-1",
                "kind": "main",
                "geometry": Point(50, 130),
            },
            {
                "code": "E-2",
                "owner_layer": "compounds",
                "owner_code": "XQ-1",
                "kind": "pedestrian",
                "geometry": Point(300, 120),
            },
        ]
    )
    return {
        "grids": grids,
        "roads": roads,
        "street_lamps": lamps,
        "bins": bins,
        "schools": schools,
        "venues": venues,
        "illegal_buildings": illegal,
        "signage": signage,
        "compounds": compounds,
        "buildings": buildings,
        "entrances": entrances,
    }


def write_geojson(gdf: gpd.GeoDataFrame, path: Path) -> Path:
    """Write a frame as GeoJSON (full precision) and return the path."""
    pyogrio.write_dataframe(gdf, path, driver="GeoJSON", layer_options={"COORDINATE_PRECISION": 15})
    return path
