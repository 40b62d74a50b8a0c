"""CSV tables as field staff and Chinese Excel write them.

Chinese Excel saves CSV as GBK/GB18030 unless told otherwise, and with a BOM
when it is UTF-8; the delimiter may be a comma, semicolon or tab; the
coordinate columns may be named in English or Chinese, or a WKT column may
carry the geometry.  GDAL's CSV driver handles some of this but not the
encodings, so the table is read here and the geometry built with shapely.
"""

from __future__ import annotations

import csv
import io
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from numpy.typing import NDArray

from data.problems import ProblemList

LON_NAMES = ("lon", "lng", "long", "longitude", "x", "经度", "东经", "x坐标")
LAT_NAMES = ("lat", "latitude", "y", "纬度", "北纬", "y坐标")
WKT_NAMES = ("wkt", "geometry", "geom", "the_geom", "几何", "坐标串")
ENCODINGS = ("utf-8-sig", "gb18030")


def decode(raw: bytes, source: str) -> str:
    """Text of a CSV file: UTF-8 (with or without BOM), else GB18030 (GBK superset)."""
    for encoding in ENCODINGS:
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    problems = ProblemList(source)
    problems.add("not UTF-8 nor GBK/GB18030 text: save the CSV as UTF-8")
    problems.raise_if_any()
    raise AssertionError("unreachable")


def _find(columns: list[str], names: tuple[str, ...]) -> str | None:
    lowered = {c.strip().lower(): c for c in columns}
    for name in names:
        if name in lowered:
            return lowered[name]
    return None


def read_csv_table(raw: bytes, source: str) -> gpd.GeoDataFrame:
    """A GeoDataFrame (CRS unset: the caller declares it) from CSV bytes."""
    text = decode(raw, source)
    problems = ProblemList(source)
    try:
        dialect = csv.Sniffer().sniff(text[:65536], delimiters=",;\t|")
        delimiter = dialect.delimiter
    except csv.Error:
        delimiter = ","
    try:
        frame = pd.read_csv(io.StringIO(text), sep=delimiter, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        problems.add(f"not a readable CSV table: {exc}")
        problems.raise_if_any()
        raise
    frame.columns = [str(c).strip() for c in frame.columns]
    columns = list(frame.columns)
    lon, lat, wkt = _find(columns, LON_NAMES), _find(columns, LAT_NAMES), _find(columns, WKT_NAMES)
    if wkt is not None:
        geometry = _wkt_geometry(frame[wkt], problems)
        frame = frame.drop(columns=[wkt])
    elif lon is not None and lat is not None:
        geometry = _xy_geometry(frame[lon], frame[lat], problems, (lon, lat))
        frame = frame.drop(columns=[lon, lat])
    else:
        problems.add(
            "no geometry columns: need longitude/latitude columns (lon/lat, lng/lat, x/y, "
            f"经度/纬度) or a WKT column; found {', '.join(columns) or 'none'}"
        )
    problems.raise_if_any()
    frame = frame.replace("", None)
    return gpd.GeoDataFrame(frame, geometry=geometry, crs=None)


def _xy_geometry(
    xs: pd.Series[str], ys: pd.Series[str], problems: ProblemList, names: tuple[str, str]
) -> np.ndarray:
    x = pd.to_numeric(xs.str.strip(), errors="coerce").to_numpy(dtype=float)
    y = pd.to_numeric(ys.str.strip(), errors="coerce").to_numpy(dtype=float)
    for column, values, raw in ((names[0], x, xs), (names[1], y, ys)):
        for i in np.flatnonzero(~np.isfinite(values)):
            problems.add(
                "coordinate is not a number", row=int(i) + 1, field=column, value=raw.iloc[i]
            )
    points: NDArray[Any] = shapely.points(x, y)
    return points


def _wkt_geometry(values: pd.Series[str], problems: ProblemList) -> np.ndarray:
    geoms = shapely.from_wkt(values.to_numpy(), on_invalid="ignore")
    for i in np.flatnonzero(shapely.is_missing(geoms)):
        problems.add("not valid WKT", row=int(i) + 1, field=str(values.name), value=values.iloc[i])
    return np.asarray(geoms)
