"""lamp-spacing and bin-spacing on exact fixtures, checked against pyproj.Geod.

Roads and assets are laid out in metres on the local CGCS2000 Gauss-Kruger zone (a
diagonal road, lamps on both kerbs), then converted to WGS-84 and imported. The right
answer for a gap is the geodesic distance between the feet of its two lamps on the road,
computed here with pyproj.Geod, independently of PostGIS.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pytest
import shapely
from pyproj import Geod, Transformer
from shapely.geometry import LineString, MultiLineString, Point, box
from sqlalchemy import Engine, text

from data.importer import import_file
from layers.catalog import CATALOG
from layers.checks.framework import CheckError, Outcome, Page, parse_scope
from layers.checks.spacing import AlongRoads, BinSpacing, LampSpacing
from layers.profile import load_profile
from tests.tiny_city import write_geojson

GEOD = Geod(ellps="WGS84")
PROFILE = load_profile()
LAMP_RULE = LampSpacing()
BIN_RULE = BinSpacing()


@dataclass(frozen=True)
class Site:
    """A place and its Gauss-Kruger zone: local metres from (lon, lat) to WGS-84."""

    lon: float
    lat: float
    epsg: int

    def wgs(self, x: float, y: float) -> tuple[float, float]:
        """Local metres from the site's origin as (lon, lat)."""
        to_metric, to_wgs = _transformers(self.epsg)
        ox, oy = to_metric.transform(self.lon, self.lat)
        lon, lat = to_wgs.transform(ox + x, oy + y)
        return float(lon), float(lat)

    def geometry(self, geom: Any) -> Any:
        """A shapely geometry in local metres, in WGS-84."""
        return shapely.transform(geom, lambda xy: np.array([self.wgs(x, y) for x, y in xy]))


@functools.cache
def _transformers(epsg: int) -> tuple[Transformer, Transformer]:
    return (
        Transformer.from_crs("EPSG:4326", f"EPSG:{epsg}", always_xy=True),
        Transformer.from_crs(f"EPSG:{epsg}", "EPSG:4326", always_xy=True),
    )


MUDANJIANG = Site(129.60, 44.58, 4552)  # CGCS2000 GK CM 129E
SHENZHEN = Site(114.00, 22.50, 4547)  # CGCS2000 GK CM 114E


@dataclass
class Road:
    """A straight road: stations along it from its start, offsets to its left."""

    site: Site
    code: str
    road_class: str = "main"
    length: float = 400.0
    angle_deg: float = 30.0
    x0: float = 0.0
    y0: float = 0.0

    def local(self, station: float, offset: float = 0.0) -> tuple[float, float]:
        a = math.radians(self.angle_deg)
        return (
            self.x0 + station * math.cos(a) - offset * math.sin(a),
            self.y0 + station * math.sin(a) + offset * math.cos(a),
        )

    def at(self, station: float, offset: float = 0.0) -> tuple[float, float]:
        """(lon, lat) of a point `offset` m left of the road at `station`."""
        return self.site.wgs(*self.local(station, offset))

    def row(self) -> dict[str, Any]:
        line = LineString([self.at(0.0), self.at(self.length)])
        return {
            "code": self.code,
            "name": self.code,
            "road_class": self.road_class,
            "geometry": line,
        }


@dataclass
class City:
    """Rows per layer, imported through the import path."""

    layers: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def add(self, layer: str, **row: Any) -> None:
        self.layers.setdefault(layer, []).append(row)

    def road(self, road: Road) -> Road:
        self.add("roads", **road.row())
        return road

    def lamp(
        self,
        code: str,
        road: Road,
        station: float,
        offset: float = 6.0,
        height: float | None = 10.0,
        distribution: str = "cut_off",
        status: str = "lit",
        road_code: str | None = "road",
    ) -> None:
        self.add(
            "street_lamps",
            code=code,
            road_code=road.code if road_code == "road" else road_code,
            placement="road",
            pole_height_m=height,
            light_distribution=distribution,
            status=status,
            geometry=Point(road.at(station, offset)),
        )

    def bin(
        self,
        code: str,
        road: Road,
        station: float,
        kind: str = "litter_bin",
        condition: str = "good",
    ) -> None:
        self.add(
            "bins",
            code=code,
            road_code=road.code,
            kind=kind,
            condition=condition,
            geometry=Point(road.at(station, -4.0)),
        )

    def load(self, engine: Engine, tmp_path: Path) -> None:
        for spec in CATALOG:
            if spec.id in self.layers:
                rows = self.layers[spec.id]
                frame = gpd.GeoDataFrame(
                    [{k: v for k, v in r.items() if k != "geometry"} for r in rows],
                    geometry=[r["geometry"] for r in rows],
                    crs="EPSG:4326",
                )
                import_file(engine, write_geojson(frame, tmp_path / f"{spec.id}.geojson"), spec)


def run(
    engine: Engine,
    rule: LampSpacing | BinSpacing,
    overrides: dict[str, str] | None = None,
    scope: str = "all",
) -> Outcome:
    with engine.connect() as conn:
        jit = "SELECT current_setting('jit')"
        before = conn.execute(text(jit)).scalar_one()
        outcome = rule.evaluate(conn, parse_scope(scope), rule.parameters(PROFILE, overrides))
        assert conn.execute(text(jit)).scalar_one() == before  # turned off only while it ran
    return outcome


def geodesic(a: tuple[float, float], b: tuple[float, float]) -> float:
    return float(GEOD.inv(a[0], a[1], b[0], b[1])[2])


def gaps(outcome: Outcome) -> list[tuple[str | None, str | None]]:
    return [(f["properties"]["from_code"], f["properties"]["to_code"]) for f in outcome.evidence]


def lamps_at(
    city: City, road: Road, stations: Sequence[float], prefix: str = "L", **kw: Any
) -> None:
    """Lamps at these stations, alternately on the left and right kerb."""
    for i, s in enumerate(stations):
        city.lamp(f"{prefix}-{i:02d}", road, s, offset=6.0 if i % 2 == 0 else -6.0, **kw)


STATIONS_55 = [10, 40, 70, 100, 130, 185, 215, 245, 275, 305, 335, 365, 395]


@pytest.mark.parametrize("site", [MUDANJIANG, SHENZHEN], ids=["44.58N", "22.5N"])
def test_one_55_m_gap_among_30_m_spacings_is_the_only_failing_segment(
    engine: Engine, tmp_path: Path, site: Site
) -> None:
    city = City()
    road = city.road(Road(site, "RD-1"))
    lamps_at(city, road, STATIONS_55)
    city.load(engine, tmp_path)

    outcome = run(engine, LAMP_RULE)

    # On the zone's central meridian (114E) the 30 m stretches are 30.00 m on the ground,
    # exactly the allowance, which passes; at 129.6E they are 29.999 m.
    assert abs(geodesic(road.at(10), road.at(40)) - 30.0) < 0.001
    assert gaps(outcome) == [("L-04", "L-05")]
    gap = outcome.evidence[0]
    p = gap["properties"]
    foot_a, foot_b = road.at(130), road.at(185)
    truth = geodesic(foot_a, foot_b)
    assert abs(truth - 55.0) < 0.05  # the fixture's 55 m, on the ground
    assert abs(p["length_m"] - truth) <= 0.01
    assert p["allowed_m"] == 30.0
    assert (p["road_code"], p["road_class"], p["at"]) == ("RD-1", "main", "between")
    assert abs(p["start_m"] - geodesic(road.at(0), foot_a)) <= 0.01
    assert "L-04" in p["reason"] and "米" in p["reason"] and " m " in p["reason"]
    # The segment is the road between the two feet, not the lamps 6 m off it.
    assert gap["geometry"]["type"] == "LineString"
    coords = gap["geometry"]["coordinates"]
    assert geodesic(tuple(coords[0]), foot_a) < 0.01
    assert geodesic(tuple(coords[-1]), foot_b) < 0.01
    main = outcome.summary["classes"]["main"]
    length = geodesic(road.at(0), road.at(400))
    assert abs(main["length_m"] - length) <= 0.01
    assert main["gap_m"] == p["length_m"]
    assert main["lit_share"] == pytest.approx((length - truth) / length, abs=1e-6)
    assert main["threshold"] == 1.0
    assert outcome.passed is False


def test_a_gap_just_over_the_allowance_is_found_at_both_ends_of_a_100_km_road(
    engine: Engine, tmp_path: Path
) -> None:
    # Fraction x road length is a few tenths of a percent off at the ends of a road this
    # long (its latitude spans 50 km): only the exact geodesic length may decide.
    city = City()
    road = city.road(Road(MUDANJIANG, "RD-1", length=100_000.0))
    stations = {"L-S1": 100.0, "L-S2": 130.05, "L-N1": 99_850.0, "L-N2": 99_880.05}
    for code, station in stations.items():
        city.lamp(code, road, station, offset=0.0)
    city.load(engine, tmp_path)

    outcome = run(engine, LAMP_RULE)

    found = {(p["from_code"], p["to_code"]): p for p in (f["properties"] for f in outcome.evidence)}
    for a, b in (("L-S1", "L-S2"), ("L-N1", "L-N2")):
        truth = geodesic(road.at(stations[a]), road.at(stations[b]))
        assert 30.01 < truth < 30.05
        assert abs(found[(a, b)]["length_m"] - truth) <= 0.01


def test_semi_cut_off_lamps_33_m_apart_pass_at_10_m_and_fail_at_9_m(
    engine: Engine, tmp_path: Path
) -> None:
    city = City()
    tall = city.road(Road(MUDANJIANG, "RD-10"))
    short = city.road(Road(MUDANJIANG, "RD-9", y0=300))
    stations = [10 + 33 * k for k in range(12)]  # last at 373, 27 m from the end
    lamps_at(city, tall, stations, "T", height=10.0, distribution="semi_cut_off")
    lamps_at(city, short, stations, "S", height=9.0, distribution="semi_cut_off")
    city.load(engine, tmp_path)

    outcome = run(engine, LAMP_RULE)

    assert gaps(outcome) == [(f"S-{i:02d}", f"S-{i + 1:02d}") for i in range(11)]
    for i, f in enumerate(outcome.evidence):
        assert f["properties"]["road_code"] == "RD-9"
        assert f["properties"]["allowed_m"] == 31.5
        truth = geodesic(short.at(stations[i]), short.at(stations[i + 1]))
        assert abs(f["properties"]["length_m"] - truth) <= 0.01
    assert outcome.summary["classes"]["main"]["gaps"] == 11


def test_two_lamps_are_held_to_the_smaller_allowance(engine: Engine, tmp_path: Path) -> None:
    city = City()
    road = city.road(Road(SHENZHEN, "RD-1", length=80))
    city.lamp("L-1", road, 5, height=12.0)  # 36 m
    city.lamp("L-2", road, 38, height=12.0)  # 36 m: 33 m from L-1, fine
    city.lamp("L-3", road, 71, height=10.0)  # 30 m: 33 m from L-2 is too far
    city.load(engine, tmp_path)

    outcome = run(engine, LAMP_RULE)

    assert gaps(outcome) == [("L-2", "L-3")]
    assert outcome.evidence[0]["properties"]["allowed_m"] == 30.0


@pytest.mark.parametrize(
    ("offset", "related"), [(5.0, True), (-40.0, False)], ids=["5 m off", "40 m off"]
)
def test_a_lamp_without_road_code_belongs_to_the_nearest_road_within_tolerance(
    engine: Engine, tmp_path: Path, offset: float, related: bool
) -> None:
    city = City()
    road = city.road(Road(MUDANJIANG, "RD-1"))
    # A parallel back street 18 m to the left: the 5 m lamp is 13 m from it, also in range.
    city.road(Road(MUDANJIANG, "RD-2", road_class="back_street", x0=-18 * 0.5, y0=18 * 0.866))
    lamps_at(city, road, [10, 40, 70, 100, 130, 190, 220, 250, 280, 310, 340, 370, 395])
    city.lamp("L-X", road, 160, offset=offset, road_code=None)
    city.load(engine, tmp_path)

    outcome = run(engine, LAMP_RULE)
    by_road = {f["properties"]["road_code"]: f["properties"] for f in outcome.evidence}
    on_main = [g for g in gaps(outcome) if g[0] is not None]

    assert on_main == ([] if related else [("L-04", "L-05")])
    assert by_road["RD-2"]["at"] == "whole_road"  # the lamp went to the nearer road only
    if not related:
        widened = run(engine, LAMP_RULE, {"road_tolerance_m": "41"})
        assert [g for g in gaps(widened) if g[0]] == []


def test_missing_lamps_make_gaps_unlit_and_damaged_ones_do_not(
    engine: Engine, tmp_path: Path
) -> None:
    city = City()
    road = city.road(Road(SHENZHEN, "RD-1", length=190))
    for i, s in enumerate([5, 35, 65, 95, 125, 155, 185]):
        status = {2: "unlit", 3: "missing", 5: "damaged"}.get(i, "lit")
        city.lamp(f"L-{i}", road, s, status=status)
    city.load(engine, tmp_path)

    outcome = run(engine, LAMP_RULE)

    assert gaps(outcome) == [("L-2", "L-4")]
    p = outcome.evidence[0]["properties"]
    assert abs(p["length_m"] - geodesic(road.at(65), road.at(125))) <= 0.01


def test_road_ends_and_roads_without_lamps(engine: Engine, tmp_path: Path) -> None:
    city = City()
    road = city.road(Road(MUDANJIANG, "RD-1", length=400))
    lamps_at(city, road, [40.0 + 30 * k for k in range(12)])  # 40 m from the start, 30 from the end
    bare = city.road(Road(MUDANJIANG, "RD-2", road_class="back_street", length=100, y0=-200))
    city.load(engine, tmp_path)

    outcome = run(engine, LAMP_RULE)

    assert [(f["properties"]["road_code"], f["properties"]["at"]) for f in outcome.evidence] == [
        ("RD-1", "start"),
        ("RD-2", "whole_road"),
    ]
    start, whole = (f["properties"] for f in outcome.evidence)
    assert start["to_code"] == "L-00" and start["from_code"] is None
    assert abs(start["length_m"] - geodesic(road.at(0), road.at(40))) <= 0.01
    assert whole["allowed_m"] == 18.0  # back street: 6 m default pole x 3 (strictest factor)
    assert abs(whole["length_m"] - geodesic(bare.at(0), bare.at(100))) <= 0.01
    assert outcome.summary["classes"]["back_street"]["lit_share"] == 0.0


def test_bins_on_a_commercial_street_with_one_70_m_gap(engine: Engine, tmp_path: Path) -> None:
    city = City()
    street = city.road(Road(SHENZHEN, "RD-1", road_class="commercial", length=300))
    for i, s in enumerate([10, 55, 100, 170, 215, 260]):
        city.bin(f"B-{i}", street, s, condition="damaged" if i == 4 else "good")
    city.bin("B-closed", street, 135, kind="closed_bin")  # counts only when asked below
    city.bin("B-gone", street, 140, condition="missing")  # not there
    city.load(engine, tmp_path)

    outcome = run(engine, BIN_RULE, {"kinds": "litter_bin"})

    assert gaps(outcome) == [("B-2", "B-3")]
    p = outcome.evidence[0]["properties"]
    assert abs(p["length_m"] - geodesic(street.at(100), street.at(170))) <= 0.01
    assert abs(p["length_m"] - 70.0) < 0.05
    assert p["allowed_m"] == 50.0
    assert "果皮箱" in p["reason"]
    length = geodesic(street.at(0), street.at(300))
    served = outcome.summary["classes"]["commercial"]["served_share"]
    assert served == pytest.approx((length - p["length_m"]) / length, abs=1e-4)
    assert outcome.passed is False
    # Closed bins count too by default: the gap splits into two 35 m stretches.
    assert run(engine, BIN_RULE).passed is True


GRID_WEST, GRID_EAST = "231005001001001", "231005001001002"
COMMUNITY = "231005001001000"


def test_scope_and_by_unit_follow_the_roads_grid(engine: Engine, tmp_path: Path) -> None:
    city = City()
    for code, level, parent, shape in (
        ("231005000000000", "district", None, box(0, 0, 800, 200)),
        ("231005001000000", "street", "231005000000000", box(0, 0, 800, 200)),
        (COMMUNITY, "community", "231005001000000", box(0, 0, 800, 200)),
        (GRID_WEST, "grid", COMMUNITY, box(0, 0, 400, 200)),
        (GRID_EAST, "grid", COMMUNITY, box(400, 0, 800, 200)),
    ):
        city.add(
            "grids",
            code=code,
            level=level,
            parent_code=parent,
            name=code,
            geometry=MUDANJIANG.geometry(shape),
        )
    west = city.road(Road(MUDANJIANG, "RD-W", length=360, angle_deg=0, x0=20, y0=100))
    east = city.road(Road(MUDANJIANG, "RD-E", length=360, angle_deg=0, x0=420, y0=100))
    lamps_at(city, west, [10, 40, 70, 100, 130, 185, 215, 245, 275, 305, 335], "W")
    lamps_at(city, east, [10 + 30 * k for k in range(12)], "E")
    city.load(engine, tmp_path)

    west_only = run(engine, LAMP_RULE, scope=f"grid:{GRID_WEST}")
    east_only = run(engine, LAMP_RULE, scope=f"grid:{GRID_EAST}")
    both = run(engine, LAMP_RULE, scope=f"community:{COMMUNITY}")

    assert gaps(west_only) == [("W-04", "W-05")]
    assert west_only.evidence[0]["properties"]["grid_code"] == GRID_WEST
    assert (west_only.summary["roads"], west_only.passed) == (1, False)
    assert (east_only.summary["roads"], east_only.evidence, east_only.passed) == (1, [], True)
    assert (both.summary["roads"], len(both.evidence), both.passed) == (2, 1, False)

    with engine.connect() as conn:
        params = LAMP_RULE.parameters(PROFILE)
        grids = LAMP_RULE.by_unit(conn, "grid", params)
        communities = LAMP_RULE.by_unit(conn, "community", params)
    assert set(grids) == {GRID_WEST, GRID_EAST}
    assert grids[GRID_WEST].passed is False
    assert grids[GRID_WEST].figure == west_only.summary["lit_share"]
    assert (grids[GRID_EAST].passed, grids[GRID_EAST].figure) == (True, 1.0)
    assert communities[COMMUNITY].passed is False
    assert communities[COMMUNITY].figure == both.summary["lit_share"]


def test_parameter_overrides_what_if(engine: Engine, tmp_path: Path) -> None:
    city = City()
    road = city.road(Road(MUDANJIANG, "RD-1"))
    lamps_at(city, road, [10, 40, 70, 100, 138, 168, 198, 228, 258, 288, 318, 348, 378])
    branch = city.road(Road(MUDANJIANG, "RD-2", road_class="branch", length=150, y0=-300))
    lamps_at(city, branch, [9, 42, 75, 108, 141], "B", height=None, distribution="non_cut_off")
    city.load(engine, tmp_path)

    assert gaps(run(engine, LAMP_RULE)) == [
        ("L-03", "L-04"),  # 38 m > 3 x 10 m
        *[(f"B-{i:02d}", f"B-{i + 1:02d}") for i in range(4)],  # 33 m > 4 x 8 m (branch default)
    ]
    assert gaps(run(engine, LAMP_RULE, {"spacing_factor.cut_off": "4"}))[0][0] == "B-00"
    assert gaps(run(engine, LAMP_RULE, {"default_pole_height_m.branch": "9"})) == [("L-03", "L-04")]
    capped = run(engine, LAMP_RULE, {"max_spacing_m.main": "25"})
    assert len([f for f in capped.evidence if f["properties"]["road_code"] == "RD-1"]) == 12
    lenient = run(engine, LAMP_RULE, {"installation_rate": "0.1"})  # branch lit 12 %
    assert lenient.passed is True and len(lenient.evidence) == 5
    with pytest.raises(CheckError, match="cutoff"):
        LAMP_RULE.parameters(PROFILE, {"spacing_factor.cutoff": "4"})
    with pytest.raises(CheckError, match="kinds"):
        BIN_RULE.parameters(PROFILE, {"kinds": "litter_bin,bucket"})


def test_a_road_imported_as_a_multilinestring(engine: Engine, tmp_path: Path) -> None:
    city = City()
    road = Road(SHENZHEN, "RD-1")
    parts = MultiLineString([[road.at(0), road.at(200)], [road.at(200), road.at(400)]])
    city.add("roads", code="RD-1", name="RD-1", road_class="main", geometry=parts)
    lamps_at(city, road, [10, 40, 70, 100, 130, 160, 190, 245, 275, 305, 335, 365, 395])
    city.load(engine, tmp_path)

    outcome = run(engine, LAMP_RULE)

    assert gaps(outcome) == [("L-06", "L-07")]  # across the joint of the two parts
    p = outcome.evidence[0]["properties"]
    assert abs(p["length_m"] - geodesic(road.at(190), road.at(245))) <= 0.01


def test_a_page_of_gaps_keeps_every_gap_in_the_figures(engine: Engine, tmp_path: Path) -> None:
    city = City()
    road = city.road(Road(MUDANJIANG, "RD-P"))
    lamps_at(city, road, [10, 40, 100, 130, 190, 220, 280, 310, 340, 370, 395])
    city.load(engine, tmp_path)
    whole = run(engine, LAMP_RULE)
    with engine.connect() as conn:
        page = LAMP_RULE.evaluate(
            conn, parse_scope("all"), LAMP_RULE.parameters(PROFILE), Page(limit=1, offset=1)
        )
    assert gaps(whole) == [("L-01", "L-02"), ("L-03", "L-04"), ("L-05", "L-06")]
    assert gaps(page) == [("L-03", "L-04")] and page.evidence == whole.evidence[1:2]
    assert page.evidence_total == whole.evidence_total == 3
    assert page.summary == whole.summary and page.passed is whole.passed is False


class _LampSpacingWalkingEveryRoad(LampSpacing):
    """lamp-spacing without the kept stretches: every road through the window."""

    def _spec(self, params: Any) -> AlongRoads:
        return replace(super()._spec(params), stretches=None)


KEPT = {
    "street_lamps_on_roads": "id, road_id, f, placement, status, pole_height_m, light_distribution",
    "bins_on_roads": "id, road_id, f, kind, condition",
    "lamp_stretches": "road_id, from_id, to_id, f1, f2, from_pole_height_m, "
    "from_light_distribution, to_pole_height_m, to_light_distribution",
}


def _kept(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    with engine.connect() as conn:
        return {
            t: [tuple(r) for r in conn.execute(text(f"SELECT {c} FROM {t} ORDER BY {c}"))]
            for t, c in KEPT.items()
        }


def _recomputed(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    with engine.begin() as conn:
        conn.execute(text("SELECT civic_gis_on_roads_refresh('street_lamps', NULL, true)"))
        conn.execute(text("SELECT civic_gis_on_roads_refresh('bins', NULL, true)"))
    return _kept(engine)


WRITES = {
    "a lamp goes missing": "UPDATE street_lamps SET status = 'missing' WHERE code = 'L-05'",
    "a missing lamp is back": "UPDATE street_lamps SET status = 'lit' WHERE code = 'L-05'",
    "a lamp is moved along the road": (
        "UPDATE street_lamps SET geom = ST_Translate(geom, 0.0002, 0.0001) WHERE code = 'L-02'"
    ),
    "a pole is recorded higher": "UPDATE street_lamps SET pole_height_m = 14 WHERE code = 'L-07'",
    "a lamp is added": (
        "INSERT INTO street_lamps (code, road_code, placement, status, pole_height_m, "
        "light_distribution, geom) SELECT 'L-NEW', road_code, placement, status, 9, "
        "'semi_cut_off', ST_Translate(geom, 0.0001, 0.00005) FROM street_lamps WHERE code = 'L-03'"
    ),
    "a lamp is removed": "DELETE FROM street_lamps WHERE code = 'L-09'",
    "a road is redrawn": (
        "UPDATE roads SET geom = ST_Translate(geom, 0.00003, 0) WHERE code = 'RD-2'"
    ),
    "a road without lamps is added": (
        "INSERT INTO roads (code, name, road_class, geom) "
        "SELECT 'RD-3', 'RD-3', 'branch', ST_Translate(geom, 0.01, 0) FROM roads "
        "WHERE code = 'RD-1'"
    ),
    "a road's code is corrected": "UPDATE roads SET code = 'RD-1A' WHERE code = 'RD-1'",
    "a bin is damaged": "UPDATE bins SET condition = 'missing' WHERE code = 'B-01'",
    "a road is removed": "DELETE FROM roads WHERE code = 'RD-2'",
}


def test_kept_positions_and_stretches_follow_every_write_and_answer_as_the_window_does(
    engine: Engine, tmp_path: Path
) -> None:
    city = City()
    one = city.road(Road(MUDANJIANG, "RD-1"))
    two = city.road(Road(MUDANJIANG, "RD-2", road_class="branch", y0=300.0, angle_deg=-10.0))
    lamps_at(city, one, STATIONS_55)
    lamps_at(city, two, [5, 60, 90, 180, 240], prefix="M", height=None)
    # Lamps without a road code: related at run time to the nearest road within 15 m.
    city.lamp("N-1", two, 120.0, offset=4.0, road_code=None)
    city.lamp("N-2", one, 250.0, offset=40.0, road_code=None)  # too far from any road
    for i, station in enumerate((20.0, 150.0, 390.0)):
        city.bin(f"B-{i:02d}", one, station)
    city.load(engine, tmp_path)
    walking = _LampSpacingWalkingEveryRoad()

    for story, sql in [("imported", None), *WRITES.items()]:
        if sql is not None:
            with engine.begin() as conn:
                assert conn.execute(text(sql)).rowcount == 1, story
        kept = _kept(engine)
        assert kept == _recomputed(engine), story
        assert kept["lamp_stretches"], story
        fast, slow = run(engine, LAMP_RULE), run(engine, walking)
        assert (fast.summary, fast.evidence) == (slow.summary, slow.evidence), story
        assert run(engine, BIN_RULE).summary["roads"] >= 1, story
    # The last road is the new one: one stretch, the whole road, with no lamp at either end.
    with engine.connect() as conn:
        whole = conn.execute(
            text(
                "SELECT from_id, to_id, f1, f2 FROM lamp_stretches s JOIN roads r "
                "ON r.id = s.road_id WHERE r.code = 'RD-3'"
            )
        ).all()
    assert [tuple(w) for w in whole] == [(None, None, 0.0, 1.0)]
