"""The rows the upload writes agree with PostGIS: EWKB built in numpy, and the duplicate key's
rounding computed in Python equals the one the database computes from stored points."""

from __future__ import annotations

import numpy as np
import shapely
from sqlalchemy import Engine, text

from data.field import FieldPoint
from layers.field_store import POSITION_SCALE, duplicate_keys, point_ewkbs

# Ties and near-ties of the 1e-7 degree grid, negative zero, extremes.
LON = np.array([129.6021, 129.60210005, 129.60210015, -0.0, 180.0, -179.99999995, 1e-300])
LAT = np.array([44.5853, 44.58530005, 44.58530025, 0.0, -90.0, 89.99999995, 5.5])


def test_hand_built_ewkb_is_what_geos_writes() -> None:
    ours = point_ewkbs(LON, LAT)
    geos = shapely.to_wkb(shapely.set_srid(shapely.points(LON, LAT), 4326), include_srid=True)
    assert ours == [bytes(w) for w in geos]


def test_postgis_reads_the_ewkb_and_rounds_positions_as_python_does(engine: Engine) -> None:
    points = [
        FieldPoint(i, float(x), float(y), float(x), float(y), "WGS 84")
        for i, (x, y) in enumerate(zip(LON, LAT, strict=True))
    ]
    keys = duplicate_keys(points, [None] * len(points), LON, LAT)
    scale = f"{POSITION_SCALE:.0f}::float8"
    with engine.connect() as conn:
        found = conn.execute(
            text(
                f"SELECT ST_X(g), ST_Y(g), ST_SRID(g), round(ST_X(g) * {scale}), "
                f"round(ST_Y(g) * {scale}) FROM unnest(CAST(:w AS bytea[])) AS w, "
                "LATERAL ST_GeomFromEWKB(w) AS g"
            ),
            {"w": point_ewkbs(LON, LAT)},
        ).all()
    assert [(r[0], r[1]) for r in found] == list(zip(LON.tolist(), LAT.tolist(), strict=True))
    assert {r[2] for r in found} == {4326}
    assert [(int(r[3]), int(r[4])) for r in found] == [(k[3], k[4]) for k in keys]
