"""`grid-topology`: gaps, overlaps, officers and codes, with areas against pyproj.Geod.

Drawn in metres (EPSG:4552, tests/tiny_city.py): a district and a street
office 400 m x 300 m; community C (y 0..200) holds cells W (x 0..150),
M (x 145..250, overlapping W by 5 m x 200 m) and E (x 260..399.996, no officer),
which leave a 10 m x 200 m gap at x 250..260 and a 0.004 m x 200 m sliver at
the east edge; community C2 (y 200..300) is one clean cell G. Cell B carries a
community code though it says it is a grid.

Every polygon gets the corners of the others that lie on its edges, so that
neighbours share their vertices as a topologically built grid layer does:
corners alone would leave millimetre seams, since a straight line in metres is
not one in degrees.
"""

from __future__ import annotations

from typing import Any

import pytest
import shapely
from pyproj import Geod
from shapely.geometry import box
from sqlalchemy import Connection, Engine, text

from layers.checks.framework import Scope, parse_scope
from layers.checks.grid_topology import GridTopology
from layers.profile import load_profile
from tests.tiny_city import tiny_city, wgs

GEOD = Geod(ellps="WGS84")
RULE = GridTopology()
PARAMS = RULE.parameters(load_profile())

D, S = "231005000000000", "231005001000000"
C, W, M, E = "231005001001000", "231005001001001", "231005001001002", "231005001001003"
C2, G = "231005001003000", "231005001003001"
B = "231005001002000"


def geod_area(geom_m: Any) -> float:
    area, _ = GEOD.geometry_area_perimeter(wgs(geom_m))
    return abs(float(area))


def noded(shapes: dict[str, Any]) -> dict[str, Any]:
    """Each polygon with the vertices of all the others that lie on its boundary."""
    corners = shapely.MultiPoint(
        [c for g in shapes.values() for c in shapely.get_coordinates(g).tolist()]
    )
    return {k: shapely.snap(g, corners, 1e-6) for k, g in shapes.items()}


def add_grid(
    conn: Connection,
    code: str,
    level: str,
    geom_m: Any,
    parent: str | None = None,
    officer: str | None = "王丹",
    name: str | None = None,
) -> None:
    conn.execute(
        text(
            "INSERT INTO grids (code, level, name, parent_code, officer, geom) VALUES "
            "(:code, :level, :name, :parent, :officer, "
            "ST_Multi(ST_GeomFromWKB(decode(:wkb, 'hex'), 4326)))"
        ),
        {
            "code": code,
            "level": level,
            "name": name or f"{level}-{code[-6:]}",
            "parent": parent,
            "officer": officer,
            "wkb": shapely.to_wkb(wgs(geom_m), hex=True),
        },
    )


SHAPES = noded(
    {
        D: box(0, 0, 400, 300),
        S: box(0, 0, 400, 300),
        C: box(0, 0, 400, 200),
        C2: box(0, 200, 400, 300),
        W: box(0, 0, 150, 200),
        M: box(145, 0, 250, 200),
        E: box(260, 0, 399.996, 200),
        G: box(0, 200, 400, 300),
        B: box(500, 0, 520, 20),
    }
)


@pytest.fixture
def grids(engine: Engine) -> Engine:
    with engine.begin() as conn:
        add_grid(conn, D, "district", SHAPES[D], officer=None)
        add_grid(conn, S, "street", SHAPES[S], D, officer=None)
        add_grid(conn, C, "community", SHAPES[C], S, officer=None)
        add_grid(conn, C2, "community", SHAPES[C2], S, officer=None)
        add_grid(conn, W, "grid", SHAPES[W], C)
        add_grid(conn, M, "grid", SHAPES[M], C)
        add_grid(conn, E, "grid", SHAPES[E], C, officer=" ")
        add_grid(conn, G, "grid", SHAPES[G], C2)
        add_grid(conn, B, "grid", SHAPES[B])
    return engine


def of(evidence: list[dict[str, Any]], problem: str) -> list[dict[str, Any]]:
    return [f["properties"] for f in evidence if f["properties"]["problem"] == problem]


def test_gap_overlap_officer_and_code_over_the_whole_city(grids: Engine) -> None:
    with grids.connect() as conn:
        out = RULE.evaluate(conn, Scope("all"), PARAMS)
    assert out.passed is False
    (gap,) = of(out.evidence, "gap")  # the 0.8 m² sliver is below the 1 m² tolerance
    expected = geod_area(box(250, 0, 260, 200))
    assert expected == pytest.approx(2000.0, abs=1.0)
    assert gap["area_m2"] == pytest.approx(expected, abs=1.0)
    assert "2000" in gap["reason"] or "1999" in gap["reason"]
    (overlap,) = of(out.evidence, "overlap")
    assert overlap["codes"] == [W, M]
    assert overlap["area_m2"] == pytest.approx(geod_area(box(145, 0, 150, 200)), abs=1.0)
    assert overlap["area_m2"] == pytest.approx(1000.0, abs=1.0)
    assert W in overlap["reason"] and "overlap" in overlap["reason"]
    assert [p["codes"] for p in of(out.evidence, "no_officer")] == [[E]]
    (bad,) = of(out.evidence, "bad_code")
    assert bad["codes"] == [B]
    assert "community code" in bad["reason"] and "编码不规范" in bad["reason"]
    assert of(out.evidence, "outside_parent") == of(out.evidence, "duplicate_name") == []
    assert out.summary["cells"] == 5
    assert out.summary["gap"] == 1 and out.summary["overlap"] == 1
    # The gap polygon is drawn where it is: the strip x 250..260.
    gap_geom = shapely.geometry.shape(
        next(f["geometry"] for f in out.evidence if f["properties"]["problem"] == "gap")
    )
    off, _ = GEOD.geometry_area_perimeter(gap_geom.symmetric_difference(wgs(box(250, 0, 260, 200))))
    assert abs(off) < 0.5


def test_a_lower_sliver_tolerance_reports_the_sliver(grids: Engine) -> None:
    with grids.connect() as conn:
        out = RULE.evaluate(
            conn, Scope("all"), RULE.parameters(load_profile(), {"sliver_area_m2": "0.5"})
        )
    areas = sorted(p["area_m2"] for p in of(out.evidence, "gap"))
    assert len(areas) == 2
    assert areas[0] == pytest.approx(geod_area(box(399.996, 0, 400, 200)), abs=0.05)
    assert areas[0] == pytest.approx(0.8, abs=0.05)


def test_a_community_is_checked_against_its_own_polygon_and_cells(grids: Engine) -> None:
    with grids.connect() as conn:
        out = RULE.evaluate(conn, parse_scope(f"community:{C}"), PARAMS)
        clean = RULE.evaluate(conn, parse_scope(f"community:{C2}"), PARAMS)
        one = RULE.evaluate(conn, parse_scope(f"grid:{W}"), PARAMS)
    assert sorted(p["problem"] for p in (f["properties"] for f in out.evidence)) == [
        "gap",
        "no_officer",
        "overlap",
    ]
    assert of(out.evidence, "gap")[0]["unit"] == C
    assert out.summary["cells"] == 3
    assert clean.passed is True and clean.evidence == []
    assert [p["problem"] for p in (f["properties"] for f in one.evidence)] == ["overlap"]


def test_by_unit_fails_the_units_with_problems(grids: Engine) -> None:
    with grids.connect() as conn:
        cells = RULE.by_unit(conn, "grid", PARAMS)
        communities = RULE.by_unit(conn, "community", PARAMS)
        streets = RULE.by_unit(conn, "street", PARAMS)
    assert {u: v.passed for u, v in cells.items()} == {
        W: False,
        M: False,
        E: False,
        G: True,
        B: False,
    }
    assert communities[C].figure == 3.0  # gap, overlap, no officer
    assert communities[C2].passed is True
    assert communities[B].passed is False
    assert streets[S].figure == 4.0  # and B's code


def test_a_cell_beyond_its_community_and_a_repeated_name(grids: Engine) -> None:
    x = "231005001001004"
    with grids.begin() as conn:
        add_grid(conn, x, "grid", box(400, 0, 420, 20), C, name=f"grid-{W[-6:]}")
    with grids.connect() as conn:
        out = RULE.evaluate(conn, Scope("all"), PARAMS)
    (outside,) = of(out.evidence, "outside_parent")
    assert (outside["codes"], outside["parent"]) == ([x], C)
    assert outside["area_m2"] == pytest.approx(geod_area(box(400, 0, 420, 20)), abs=0.5)
    assert sorted(p["codes"][0] for p in of(out.evidence, "duplicate_name")) == [W, x]


def test_the_tiny_city_grids_tile_cleanly(engine: Engine) -> None:
    frame = tiny_city()["grids"]
    with engine.begin() as conn:
        for row in frame.itertuples():
            conn.execute(
                text(
                    "INSERT INTO grids (code, level, name, parent_code, officer, geom) VALUES "
                    "(:code, :level, :name, :parent, :officer, "
                    "ST_Multi(ST_GeomFromWKB(decode(:wkb, 'hex'), 4326)))"
                ),
                {
                    "code": row.code,
                    "level": row.level,
                    "name": row.name,
                    "parent": row.parent_code if isinstance(row.parent_code, str) else None,
                    "officer": row.officer if isinstance(row.officer, str) else None,
                    "wkb": shapely.to_wkb(row.geometry, hex=True),
                },
            )
    with engine.connect() as conn:
        out = RULE.evaluate(conn, Scope("all"), RULE.parameters(load_profile()))
    assert out.evidence == []
    assert out.passed is True
    assert out.summary["cells"] == 2


def test_an_overlap_just_above_the_tolerance_is_still_found_over_the_whole_city(
    engine: Engine,
) -> None:
    # The whole-city run skips the pairwise search when the cells' areas exceed their
    # union's by no more than the tolerance: 1.5 m² of overlap must not be skipped.
    shapes = noded(
        {
            D: box(0, 0, 200, 100),
            S: box(0, 0, 200, 100),
            C: box(0, 0, 200, 100),
            W: box(0, 0, 100.015, 100),
            M: box(100, 0, 200, 100),
        }
    )
    with engine.begin() as conn:
        add_grid(conn, D, "district", shapes[D], officer=None)
        add_grid(conn, S, "street", shapes[S], D, officer=None)
        add_grid(conn, C, "community", shapes[C], S, officer=None)
        add_grid(conn, W, "grid", shapes[W], C)
        add_grid(conn, M, "grid", shapes[M], C)
    loose = RULE.parameters(load_profile(), {"sliver_area_m2": "2"})
    with engine.connect() as conn:
        out = RULE.evaluate(conn, Scope("all"), PARAMS)
        cells = RULE.by_unit(conn, "grid", PARAMS)
        tolerated = RULE.evaluate(conn, Scope("all"), loose)
    (overlap,) = of(out.evidence, "overlap")
    assert overlap["area_m2"] == pytest.approx(geod_area(box(100, 0, 100.015, 100)), abs=0.05)
    assert [p["problem"] for p in (f["properties"] for f in out.evidence)] == ["overlap"]
    assert cells[W].passed is cells[M].passed is False
    assert tolerated.passed is True and tolerated.evidence == []
