"""GeoJSON features and CSV tables from field apps and Chinese Excel."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from data.crs import gauss_kruger_epsg, parse_crs
from data.field import InvalidUpload
from tests.data.field.samples import LAMP, read


def feature(geometry: dict[str, object], **properties: object) -> dict[str, object]:
    return {"type": "Feature", "geometry": geometry, "properties": properties}


def test_feature_collection_points_multipoints_and_lines() -> None:
    doc = {
        "type": "FeatureCollection",
        "features": [
            feature(
                {"type": "Point", "coordinates": [*LAMP, 231.5]},
                kind="lamp_unlit",
                time="2024-05-01T08:30:00Z",
                accuracy=3.5,
                name="L-0042",
                note="灯不亮",
                device="Mate 60",
                photo_id="abc",
            ),
            feature(
                {"type": "MultiPoint", "coordinates": [[129.603, 44.586], [129.604, 44.587]]},
                类型="bin_damaged",
            ),
            feature(
                {"type": "LineString", "coordinates": [[129.60, 44.585], [129.61, 44.586]]},
                name="drawn",
            ),
            feature(
                {"type": "LineString", "coordinates": [[129.60, 44.585], [129.61, 44.586]]},
                coordTimes=["2024-05-01T08:00:00Z", "2024-05-01T08:01:00Z"],
            ),
            feature(
                {
                    "type": "Polygon",
                    "coordinates": [[[129.6, 44.5], [129.7, 44.5], [129.6, 44.6], [129.6, 44.5]]],
                }
            ),
            {"type": "Feature", "geometry": None, "properties": {}},
        ],
    }
    up = read(json.dumps(doc, ensure_ascii=False).encode(), "obs.geojson")
    assert up.format == "geojson"
    lamp, bin1, bin2 = up.points
    assert (lamp.lon, lamp.lat, lamp.elevation_m) == (*LAMP, 231.5)
    assert lamp.kind == "lamp_unlit" and lamp.accuracy_m == 3.5 and lamp.name == "L-0042"
    assert lamp.description == "灯不亮" and lamp.device == "Mate 60"
    assert lamp.observed_at == datetime(2024, 5, 1, 8, 30, tzinfo=UTC)
    assert lamp.properties == {"photo_id": "abc"}
    assert bin1.row == bin2.row == 2 and bin1.kind == "bin_damaged"
    drawn, walked = up.tracks
    assert (drawn.kind, drawn.name, drawn.row) == ("line", "drawn", 3)
    assert walked.kind == "track"
    assert [p.observed_at for p in walked.points] == [
        datetime(2024, 5, 1, 8, 0, tzinfo=UTC),
        datetime(2024, 5, 1, 8, 1, tzinfo=UTC),
    ]
    assert "coordTimes" not in walked.properties
    assert [(p.row, p.field) for p in up.refused] == [(5, "geometry"), (6, None)]


def test_bare_geometry_and_single_feature() -> None:
    up = read(json.dumps({"type": "Point", "coordinates": list(LAMP)}).encode(), "p.json")
    assert up.points[0].row == 1
    one = feature({"type": "Point", "coordinates": list(LAMP)}, kind="x")
    assert read(json.dumps(one).encode(), "f.json").points[0].kind == "x"


def test_nan_and_infinity_literals_refuse_the_point_not_the_file() -> None:
    text = (
        '{"type":"FeatureCollection","features":['
        '{"type":"Feature","geometry":{"type":"Point","coordinates":[NaN,44.58]},"properties":{}},'
        '{"type":"Feature","geometry":{"type":"Point","coordinates":[129.6,Infinity]},"properties":{}},'
        '{"type":"Feature","geometry":{"type":"Point","coordinates":["129.6",44.58]},"properties":{}},'
        '{"type":"Feature","geometry":{"type":"Point","coordinates":[129.6,44.58]},"properties":{}}]}'
    )
    up = read(text.encode(), "x.geojson")
    assert len(up.points) == 1
    assert [p.row for p in up.refused] == [1, 2, 3]
    assert "NaN or infinite" in up.refused[0].reason and "NaN or infinite" in up.refused[1].reason
    assert "not a number" in up.refused[2].reason


def test_legacy_crs_member_is_used_when_nothing_is_declared() -> None:
    doc = {
        "type": "FeatureCollection",
        "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::4490"}},
        "features": [feature({"type": "Point", "coordinates": list(LAMP)})],
    }
    up = read(json.dumps(doc).encode(), "x.geojson")
    assert up.crs == "EPSG:4490"
    declared = read(json.dumps(doc).encode(), "x.geojson", crs="WGS84")
    assert declared.crs == "EPSG:4326"
    assert any("declared" in w.reason for w in declared.warnings)


def test_invalid_json_is_refused() -> None:
    with pytest.raises(InvalidUpload, match="not valid JSON at line 1"):
        read(b'{"type": "FeatureCollection", "features": [', "x.geojson")
    with pytest.raises(InvalidUpload, match="not GeoJSON"):
        read(b'{"type": "Topology"}', "x.json")


CSV_ZH = (
    "经度,纬度,类型,时间,精度,名称,备注,网格\n"
    "129.6021,44.5853,lamp_unlit,2024/5/1 16:30,4.5,L-0042,灯不亮,G01\n"
)


def test_chinese_excel_csv_in_gbk() -> None:
    up = read(CSV_ZH.encode("gbk"), "巡查.csv")
    assert up.format == "csv"
    (point,) = up.points
    assert (point.lon, point.lat) == LAMP
    assert point.kind == "lamp_unlit" and point.accuracy_m == 4.5
    assert point.name == "L-0042" and point.description == "灯不亮"
    assert point.observed_at == datetime(2024, 5, 1, 8, 30, tzinfo=UTC)  # China time
    assert point.properties == {"网格": "G01"}
    assert any("UTC+08:00" in w.reason for w in up.warnings)


def test_csv_with_bom_semicolons_and_bad_rows_refused_by_row() -> None:
    text = (
        "\ufefflng;lat;kind;hdop;ele\n"
        "129.6021;44.5853;lamp_unlit;1.0;230\n"
        "abc;44.5853;lamp_unlit;1.0;230\n"
        "129.6022;44.5854;bin_damaged;-2;230\n"
        "129.6023;44.5855;signage_missing;0.9;high\n"
        "129.6024;44.5856;lamp_unlit;1.1;231\n"
    )
    up = read(text.encode("utf-8"), "app.csv")
    assert [p.row for p in up.points] == [1, 5]
    assert up.points[1].accuracy_m == pytest.approx(5.5)
    assert [(p.row, p.field) for p in up.refused] == [(2, "lng"), (3, "hdop"), (4, "elevation")]


def test_csv_wkt_lines_and_projected_cgcs2000() -> None:
    epsg = gauss_kruger_epsg(LAMP[0])
    x, y = parse_crs(f"EPSG:{epsg}").from_wgs84(*LAMP)
    text = f"x,y,name\n{float(x):.3f},{float(y):.3f},lamp\n"
    up = read(text.encode(), "gk.csv", crs=f"EPSG:{epsg}")
    (point,) = up.points
    assert (point.lon, point.lat) == pytest.approx(LAMP, abs=1e-7)
    assert point.orig_x == pytest.approx(float(x), abs=1e-3)
    wkt = (
        'wkt,name\n"LINESTRING (129.60 44.585, 129.61 44.586)",road\n'
        '"POLYGON ((129.6 44.5, 129.7 44.5, 129.6 44.6, 129.6 44.5))",area\n'
    )
    up = read(wkt.encode(), "lines.csv")
    (line,) = up.tracks
    assert line.kind == "line" and line.name == "road" and len(line.points) == 2
    assert up.refused[0].row == 2 and "Polygon" in up.refused[0].reason


def test_csv_without_coordinate_columns_is_refused() -> None:
    with pytest.raises(InvalidUpload, match="no geometry columns"):
        read("名称,备注\na,b\n".encode(), "x.csv")


def test_gps_logger_csv_with_separate_date_and_time_columns() -> None:
    text = (
        "date,time,latitude,longitude,altitude,sats\n2024-05-01,08:30:05,44.5853,129.6021,231,9\n"
    )
    (point,) = read(text.encode(), "logger.csv").points
    assert point.observed_at == datetime(2024, 5, 1, 0, 30, 5, tzinfo=UTC)  # China time
    assert (point.elevation_m, point.satellites) == (231.0, 9)


def test_epoch_milliseconds_and_boolean_numbers_in_geojson() -> None:
    doc = {
        "type": "FeatureCollection",
        "features": [
            feature({"type": "Point", "coordinates": list(LAMP)}, timestamp=1714552200000),
            feature({"type": "Point", "coordinates": list(LAMP)}, accuracy=True),
        ],
    }
    up = read(json.dumps(doc).encode(), "app.json")
    (point,) = up.points
    assert point.observed_at == datetime(2024, 5, 1, 8, 30, tzinfo=UTC)
    (bad,) = up.refused
    assert bad.row == 2 and bad.field == "accuracy" and "not a number" in bad.reason
