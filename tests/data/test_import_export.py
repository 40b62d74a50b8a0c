"""Import and export of every layer, and every kind of bad input refused whole."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import pytest
import shapely
from shapely.geometry import Point, Polygon
from sqlalchemy import Engine, text

from data.crs import wgs84_to_gcj02
from data.exporter import SUFFIX, export_layer, layer_frame
from data.importer import import_file
from data.problems import InvalidImport
from layers.catalog import CATALOG, LayerSpec
from tests.conftest import truncate_layers
from tests.tiny_city import GRID_EAST, GRID_WEST, frame, tiny_city, wgs, write_geojson


def load_tiny_city(engine: Engine, tmp_path: Path) -> dict[str, gpd.GeoDataFrame]:
    city = tiny_city()
    for layer_id, gdf in city.items():
        import_file(
            engine, write_geojson(gdf, tmp_path / f"{layer_id}.geojson"), CATALOG.get(layer_id)
        )
    return city


def snapshot(engine: Engine) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every layer (code, version, geometry): to prove nothing changed."""
    with engine.connect() as conn:
        return {
            spec.id: [
                tuple(r)
                for r in conn.execute(
                    text(f'SELECT code, version, ST_AsEWKB(geom) FROM "{spec.table}" ORDER BY code')
                )
            ]
            for spec in CATALOG
        }


def comparable(spec: LayerSpec, gdf: gpd.GeoDataFrame) -> dict[str, tuple[object, ...]]:
    return {
        row["code"]: (*tuple(row[f] for f in spec.field_names()), row["properties"])
        for _, row in gdf.iterrows()
    }


def test_the_tiny_city_imports_with_exact_counts_and_grids(engine: Engine, tmp_path: Path) -> None:
    city = load_tiny_city(engine, tmp_path)
    with engine.connect() as conn:
        for layer_id, gdf in city.items():
            count = conn.execute(text(f'SELECT count(*) FROM "{layer_id}"')).scalar()
            assert count == len(gdf), layer_id
        grid_of: dict[str, str] = dict(
            conn.execute(
                text("SELECT l.code, g.code FROM street_lamps l JOIN grids g ON g.id = l.grid_id")
            ).all()
        )
    # Lamps at x = 15 + 30 i: i <= 6 (x <= 195) lie in the west grid, the rest in the east.
    assert [grid_of[f"L-{i:04d}"] for i in range(12)] == [GRID_WEST] * 7 + [GRID_EAST] * 5


@pytest.mark.parametrize("fmt", ["geojson", "gpkg", "shp", "csv"])
def test_every_layer_round_trips_through_every_format(
    engine: Engine, tmp_path: Path, fmt: str
) -> None:
    load_tiny_city(engine, tmp_path)
    before = {spec.id: layer_frame(engine, spec) for spec in CATALOG}
    files = {}
    for spec in CATALOG:
        files[spec.id] = tmp_path / f"out-{spec.id}{SUFFIX[fmt]}"
        assert export_layer(engine, spec, fmt, files[spec.id]) == len(before[spec.id])  # type: ignore[arg-type]
    truncate_layers(engine)
    for spec in CATALOG:
        report = import_file(engine, files[spec.id], spec)
        assert report.inserted == len(before[spec.id])
    for spec in CATALOG:
        after = layer_frame(engine, spec)
        assert len(after) == len(before[spec.id])
        assert comparable(spec, after) == comparable(spec, before[spec.id]), spec.id
        # Shapefiles store rings clockwise: compare normalised geometries.
        same = shapely.equals_exact(
            shapely.normalize(after.geometry.array),
            shapely.normalize(before[spec.id].geometry.array),
            tolerance=1e-9,
        )
        assert same.all(), spec.id


def test_moving_a_lamp_or_redrawing_a_grid_keeps_its_grid_right(
    engine: Engine, tmp_path: Path
) -> None:
    load_tiny_city(engine, tmp_path)

    def grid_of(code: str) -> str | None:
        with engine.connect() as conn:
            return conn.execute(
                text(
                    "SELECT g.code FROM street_lamps l LEFT JOIN grids g ON g.id = l.grid_id "
                    "WHERE l.code = :c"
                ),
                {"c": code},
            ).scalar()

    assert grid_of("L-0000") == GRID_WEST
    moved = wgs(Point(350, 104))
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE street_lamps SET geom = ST_GeomFromText(:w, 4326) WHERE code = 'L-0000'"),
            {"w": moved.wkt},
        )
    assert grid_of("L-0000") == GRID_EAST
    # The east grid shrinks to x >= 360: the lamp at x = 350 falls to no grid...
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE grids SET geom = ST_Multi(ST_GeomFromText(:w, 4326)) WHERE code = :c"),
            {"w": wgs(Polygon([(360, 0), (400, 0), (400, 200), (360, 200)])).wkt, "c": GRID_EAST},
        )
    assert grid_of("L-0000") is None
    # ... and the west grid grows to x <= 360: it is picked up there.
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE grids SET geom = ST_Multi(ST_GeomFromText(:w, 4326)) WHERE code = :c"),
            {"w": wgs(Polygon([(0, 0), (360, 0), (360, 200), (0, 200)])).wkt, "c": GRID_WEST},
        )
    assert grid_of("L-0000") == GRID_WEST
    assert grid_of("L-0011") == GRID_WEST  # x = 345 is now west of 360 too


def test_an_illegal_building_gets_its_geodesic_area(engine: Engine, tmp_path: Path) -> None:
    load_tiny_city(engine, tmp_path)
    with engine.connect() as conn:
        area = conn.execute(text("SELECT area_m2 FROM illegal_buildings")).scalar_one()
    # 10 m x 10 m drawn on the Gauss-Kruger plane near its central meridian (scale ~1.00003).
    assert area == pytest.approx(100.0, abs=0.05)


def lamps_file(tmp_path: Path, rows: list[dict[str, object]], name: str = "lamps") -> Path:
    return write_geojson(frame(rows), tmp_path / f"{name}.geojson")


def assert_refused(
    engine: Engine, path: Path, layer: str, *fragments: str, crs: str | None = None
) -> InvalidImport:
    before = snapshot(engine)
    with pytest.raises(InvalidImport) as caught:
        import_file(engine, path, CATALOG.get(layer), crs)
    message = str(caught.value)
    assert str(path) in message
    for fragment in fragments:
        assert fragment in message, message
    assert snapshot(engine) == before
    return caught.value


GOOD = {"code": "L-9000", "status": "lit", "geometry": Point(10, 10)}


def test_a_polygon_offered_as_a_lamp_is_refused_naming_the_row(
    engine: Engine, tmp_path: Path
) -> None:
    load_tiny_city(engine, tmp_path)
    path = lamps_file(
        tmp_path, [GOOD, {"code": "L-9001", "geometry": Polygon([(0, 0), (1, 0), (1, 1)])}]
    )
    assert_refused(
        engine, path, "street_lamps", "row 2", "wrong geometry type Polygon", "needs Point"
    )


def test_a_bow_tie_footprint_is_refused_and_a_spike_is_repaired_and_reported(
    engine: Engine, tmp_path: Path
) -> None:
    load_tiny_city(engine, tmp_path)
    bow_tie = Polygon([(100, 20), (120, 40), (120, 20), (100, 40)])
    path = write_geojson(
        frame([{"code": "WJ-2", "status": "reported", "geometry": bow_tie}]),
        tmp_path / "bow.geojson",
    )
    assert_refused(
        engine, path, "illegal_buildings", "row 1", "cannot be repaired safely", "Self-intersection"
    )
    # A ring that doubles back on itself for one vertex: same area once the spike is cut.
    spike = Polygon([(100, 20), (120, 20), (120, 30), (125, 30), (120, 30), (120, 40), (100, 40)])
    assert not spike.is_valid
    path = write_geojson(
        frame([{"code": "WJ-3", "status": "reported", "geometry": spike}]),
        tmp_path / "spike.geojson",
    )
    report = import_file(engine, path, CATALOG.get("illegal_buildings"))
    assert report.inserted == 1
    assert [p.row for p in report.repaired] == [1]
    assert "repaired" in str(report.repaired[0])


def test_out_of_range_and_swapped_coordinates_are_told_apart(
    engine: Engine, tmp_path: Path
) -> None:
    load_tiny_city(engine, tmp_path)
    rows = [
        {"code": "L-1", "status": "lit", "geometry": Point(129.6, 44.58)},
        {"code": "L-2", "status": "lit", "geometry": Point(44.58, 129.6)},
        {"code": "L-3", "status": "lit", "geometry": Point(1290.6, 44.58)},
        {"code": "L-4", "status": "lit", "geometry": Point(2.35, 48.85)},
    ]
    path = write_geojson(
        gpd.GeoDataFrame(
            [{k: v for k, v in r.items() if k != "geometry"} for r in rows],
            geometry=[r["geometry"] for r in rows],
            crs="EPSG:4326",
        ),
        tmp_path / "bad.geojson",
    )
    refused = assert_refused(engine, path, "street_lamps")
    reasons = {p.row: p.reason for p in refused.problems}
    assert set(reasons) == {2, 3, 4}
    assert "swapped" in reasons[2]
    assert "out of range" in reasons[3] and "swapped" not in reasons[3]
    assert "outside China" in reasons[4]


@pytest.mark.parametrize("crs", ["EPSG:999999", "GCJ-03", "not a crs"])
def test_an_unknown_crs_is_refused_naming_it(engine: Engine, tmp_path: Path, crs: str) -> None:
    path = lamps_file(tmp_path, [GOOD])
    assert_refused(engine, path, "street_lamps", crs, crs=crs)


def test_unknown_attribute_values_and_missing_references_are_refused(
    engine: Engine, tmp_path: Path
) -> None:
    load_tiny_city(engine, tmp_path)
    path = lamps_file(
        tmp_path,
        [
            GOOD,
            {"code": "L-9002", "status": "blinking", "geometry": Point(20, 10)},
            {"code": "L-9003", "status": "lit", "road_code": "RD-404", "geometry": Point(30, 10)},
            {"code": "L-9004", "status": "lit", "pole_height_m": "tall", "geometry": Point(40, 10)},
            {"code": "L-9000", "status": "lit", "geometry": Point(50, 10)},
        ],
    )
    refused = assert_refused(engine, path, "street_lamps", "allowed: lit (亮灯)")
    by_row = {(p.row, p.field) for p in refused.problems}
    assert {(2, "status"), (4, "pole_height_m"), (5, "code")} <= by_row
    # References are checked against the database only once the file itself is clean.
    path = lamps_file(
        tmp_path,
        [
            GOOD,
            {"code": "L-9003", "status": "lit", "road_code": "RD-404", "geometry": Point(30, 10)},
        ],
        "refs",
    )
    assert_refused(engine, path, "street_lamps", "row 2", "RD-404", "does not exist")


def test_an_existing_code_is_refused_unless_upserting(engine: Engine, tmp_path: Path) -> None:
    load_tiny_city(engine, tmp_path)
    path = lamps_file(
        tmp_path,
        [{"code": "L-0003", "status": "lit", "road_code": "RD-1", "geometry": Point(105, 104)}],
    )
    assert_refused(engine, path, "street_lamps", "L-0003", "already exists")
    report = import_file(engine, path, CATALOG.get("street_lamps"), mode="upsert")
    assert (report.inserted, report.updated) == (0, 1)
    with engine.connect() as conn:
        status, version = conn.execute(
            text("SELECT status, version FROM street_lamps WHERE code = 'L-0003'")
        ).one()
    assert (status, version) == ("lit", 2)


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b'{"type": "FeatureCollection", "features": [', "not valid JSON"),
        (b"SQLite format 3\x00" + b"\x00" * 200, "not a readable"),
        (b"PK\x03\x04garbage", "not a valid ZIP"),
        (b"name,colour\nfoo,red\n", "no geometry columns"),
        (b"\xff\xfe\x00\x81\x00\x00garbage\x00", "not UTF-8 nor GBK"),
    ],
)
def test_malformed_files_are_refused_with_the_reason(
    engine: Engine, tmp_path: Path, content: bytes, fragment: str
) -> None:
    path = tmp_path / "upload.dat"
    path.write_bytes(content)
    assert_refused(engine, path, "street_lamps", fragment)


def test_a_gbk_csv_from_chinese_excel_with_chinese_headers_and_labels(
    engine: Engine, tmp_path: Path
) -> None:
    load_tiny_city(engine, tmp_path)
    p = wgs(Point(100, 10))
    table = f"编码;经度;纬度;状态;配光类型\nL-7001;{p.x!r};{p.y!r};不亮;截光型\n"
    path = tmp_path / "lamps.csv"
    path.write_bytes(table.encode("gbk"))
    report = import_file(engine, path, CATALOG.get("street_lamps"))
    assert report.inserted == 1
    with engine.connect() as conn:
        row = conn.execute(
            text(
                "SELECT status, light_distribution, ST_X(l.geom), ST_Y(l.geom), g.code "
                "FROM street_lamps l JOIN grids g ON g.id = l.grid_id WHERE l.code = 'L-7001'"
            )
        ).one()
    assert row == ("unlit", "cut_off", p.x, p.y, GRID_WEST)


def test_a_wkt_csv_and_undeclared_columns_go_to_properties(engine: Engine, tmp_path: Path) -> None:
    load_tiny_city(engine, tmp_path)
    road = wgs(shapely.LineString([(0, 50), (400, 50)]))
    path = tmp_path / "roads.csv"
    path.write_text(
        f'code,name,道路等级,wkt,养护单位\nRD-9,"新路",支路,"{road.wkt}",市政一处\n',
        encoding="utf-8-sig",
    )
    import_file(engine, path, CATALOG.get("roads"))
    with engine.connect() as conn:
        cls, props = conn.execute(
            text("SELECT road_class, properties FROM roads WHERE code = 'RD-9'")
        ).one()
    assert cls == "branch" and props == {"养护单位": "市政一处"}


def test_gcj02_points_from_amap_are_stored_in_wgs84(engine: Engine, tmp_path: Path) -> None:
    load_tiny_city(engine, tmp_path)
    true_position = wgs(Point(100, 10))
    gx, gy = wgs84_to_gcj02(true_position.x, true_position.y)
    gdf = gpd.GeoDataFrame(
        [{"code": "L-8001", "status": "lit"}],
        geometry=[Point(float(gx), float(gy))],
        crs="EPSG:4326",
    )
    path = write_geojson(gdf, tmp_path / "amap.geojson")
    report = import_file(engine, path, CATALOG.get("street_lamps"), crs="GCJ-02")
    assert report.crs == "GCJ-02"
    with engine.connect() as conn:
        metres = conn.execute(
            text(
                "SELECT ST_Distance(geog, ST_GeogFromText(:w)) FROM street_lamps "
                "WHERE code = 'L-8001'"
            ),
            {"w": true_position.wkt},
        ).scalar_one()
    assert metres < 0.01


def test_a_grid_file_with_inconsistent_codes_is_refused(engine: Engine, tmp_path: Path) -> None:
    grids = tiny_city()["grids"].copy()
    grids.loc[4, "parent_code"] = "231005001002000"
    grids.loc[3, "code"] = "23100500100100X"
    path = write_geojson(grids, tmp_path / "grids.geojson")
    refused = assert_refused(engine, path, "grids")
    reasons = " ".join(str(p) for p in refused.problems)
    assert "row 4" in reasons and "row 5" in reasons and "231005001001000" in reasons


def test_geojson_properties_object_round_trips(engine: Engine, tmp_path: Path) -> None:
    load_tiny_city(engine, tmp_path)
    gdf = gpd.GeoDataFrame(
        [{"code": "S-9", "kind": "good_deeds", "properties": json.dumps({"photo": "a.jpg"})}],
        geometry=[wgs(Point(10, 10))],
        crs="EPSG:4326",
    )
    import_file(engine, write_geojson(gdf, tmp_path / "s.geojson"), CATALOG.get("signage"))
    with engine.connect() as conn:
        props = conn.execute(text("SELECT properties FROM signage WHERE code='S-9'")).scalar()
    assert props == {"photo": "a.jpg"}
