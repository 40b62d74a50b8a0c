"""GPX 1.0 and 1.1 as GPS units and phone apps write them."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.data.field.samples import GPX10, GPX11_GARMIN, GPX_APPLE, LAMP, gpx_raw_waypoint, read


def test_gpx11_garmin_waypoints_keep_every_field() -> None:
    up = read(GPX11_GARMIN.encode(), "etrex.gpx")
    assert up.format == "gpx"
    assert up.crs == "EPSG:4326"
    assert up.refused == []
    first, second = up.points
    assert (first.lon, first.lat) == pytest.approx(LAMP, abs=1e-12)
    assert (first.orig_x, first.orig_y) == (129.6021, 44.5853)
    assert first.row == 1 and second.row == 2
    assert first.observed_at == datetime(2024, 5, 1, 8, 30, tzinfo=UTC)
    assert first.elevation_m == 231.5
    assert (first.hdop, first.vdop, first.pdop, first.satellites) == (1.2, 1.8, 2.1, 9)
    assert first.accuracy_m == pytest.approx(1.2 * 5.0)  # hdop x the profile's uere_m
    assert first.name == "路灯不亮 001"
    assert first.description == "夜间巡查发现不亮"
    assert first.kind == "lamp_unlit"  # <type> wins over <sym>
    assert first.device == "GPSMAP 66sr"  # <src>, else the creator
    props = first.properties
    assert props["sym"] == "Flag, Blue"
    assert props["cmt"] == "灯杆 L-0042"
    assert props["magvar"] == 9.5
    assert props["fix"] == "3d"
    assert props["link"] == "http://example.invalid/p/1"
    assert props["Proximity"] == 15
    assert props["DisplayMode"] == "SymbolAndName"
    assert props["Category"] == ["巡查", "路灯"]
    assert second.kind == "Waypoint"  # no <type>: the symbol is the kind
    assert second.device == "eTrex 32x"
    assert second.accuracy_m is None  # neither accuracy nor DOP: unknown, not guessed


def test_gpx11_tracks_are_split_by_segment_and_routes_are_not_patrols() -> None:
    up = read(GPX11_GARMIN.encode(), "etrex.gpx")
    route, seg1, seg2 = up.tracks
    assert route.kind == "route" and route.row == 3 and route.name == "计划路线"
    assert [p.name for p in route.points] == ["起点", "终点"]
    assert seg1.kind == seg2.kind == "track"
    assert seg1.row == seg2.row == 4
    assert (seg1.properties["segment"], seg2.properties["segment"]) == (1, 2)
    assert seg1.properties["type"] == "patrol"
    assert len(seg1.points) == 2 and len(seg2.points) == 3
    first = seg1.points[0]
    assert first.properties == {"hr": 95, "cad": 52, "atemp": 18.5}  # TrackPointExtension
    assert first.observed_at == datetime(2024, 5, 1, 8, 0, tzinfo=UTC)
    assert first.elevation_m == 230.0


def test_gpx10_reads_the_same_way() -> None:
    up = read(GPX10.encode(), "old.gpx")
    (point,) = up.points
    assert point.kind == "signage_missing"
    assert point.satellites == 7 and point.hdop == 2.0 and point.accuracy_m == 10.0
    assert point.properties["course"] == 87.5 and point.properties["speed"] == 0.3
    assert point.properties["url"] == "http://example.invalid/s"
    assert point.device == "GPSBabel - http://www.gpsbabel.org"
    (track,) = up.tracks
    assert track.name == "TRACK 1" and track.properties["number"] == 1
    assert [p.properties["course"] for p in track.points] == [45, 46]


def test_apple_health_hacc_is_the_accuracy() -> None:
    up = read(GPX_APPLE.encode(), "route.gpx")
    (track,) = up.tracks
    first, second = track.points
    assert first.accuracy_m == 4.7 and second.accuracy_m == 3.9
    assert first.properties == {"speed": 1.21, "course": 88.2, "hAcc": 4.7, "vAcc": 3.1}
    assert first.device == "Apple Health Export"


def test_gpx_without_namespace_and_with_gbk_encoding() -> None:
    text = (
        '<?xml version="1.0" encoding="GBK"?><gpx version="1.1" creator="老软件">'
        '<wpt lat="44.5853" lon="129.6021"><name>路灯</name><desc>不亮</desc></wpt></gpx>'
    )
    up = read(text.encode("gbk"), "old.gpx")
    (point,) = up.points
    assert (point.name, point.description, point.device) == ("路灯", "不亮", "老软件")


def test_naive_times_are_utc_by_the_gpx_specification() -> None:
    up = read(gpx_raw_waypoint("44.5853", "129.6021", "<time>2024-05-01T08:30:00</time>"))
    assert up.points[0].observed_at == datetime(2024, 5, 1, 8, 30, tzinfo=UTC)
    assert any("UTC" in w.reason and "1 time(s)" in w.reason for w in up.warnings)


def test_a_time_with_an_offset_is_converted_to_utc() -> None:
    up = read(gpx_raw_waypoint("44.5853", "129.6021", "<time>2024-05-01T16:30:00.250+08:00</time>"))
    assert up.points[0].observed_at == datetime(2024, 5, 1, 8, 30, 0, 250000, tzinfo=UTC)
    assert up.warnings == []


@pytest.mark.parametrize(
    ("children", "field", "words"),
    [
        ("<ele>abc</ele>", "elevation", "not a number"),
        ("<ele>NaN</ele>", "elevation", "not a finite number"),
        ("<hdop>-1</hdop>", "hdop", "finite number >= 0"),
        ("<hdop>inf</hdop>", "hdop", "finite number >= 0"),
        ("<sat>7.5</sat>", "satellites", "whole number"),
        ("<time>yesterday</time>", "time", "not a date-time"),
    ],
)
def test_a_bad_value_refuses_its_point_by_row(children: str, field: str, words: str) -> None:
    raw = gpx_raw_waypoint("44.5853", "129.6021", children)
    up = read(raw)
    assert up.points == []
    (problem,) = up.refused
    assert problem.row == 1 and problem.field == field
    assert words in problem.reason and "wpt at line 1" in problem.reason


def test_missing_coordinates_are_refused_not_dropped() -> None:
    raw = (
        b'<gpx version="1.1" creator="t" xmlns="http://www.topografix.com/GPX/1/1">'
        b'<wpt lat="44.5853"><name>no lon</name></wpt>'
        b'<wpt lat="44.5853" lon="east"><name>bad lon</name></wpt>'
        b'<wpt lat="44.5853" lon="129.6021"><name>fine</name></wpt></gpx>'
    )
    up = read(raw)
    assert [p.name for p in up.points] == ["fine"]
    assert [(p.row, p.field) for p in up.refused] == [(1, "longitude"), (2, "longitude")]
    assert "missing" in up.refused[0].reason and "not a number" in up.refused[1].reason


def test_a_track_with_one_valid_point_is_refused_with_its_bad_vertex() -> None:
    raw = (
        b'<gpx version="1.1" creator="t" xmlns="http://www.topografix.com/GPX/1/1"><trk><trkseg>'
        b'<trkpt lat="44.5853" lon="129.6021"/><trkpt lat="95" lon="129.6021"/>'
        b"</trkseg></trk></gpx>"
    )
    up = read(raw)
    assert up.tracks == []
    reasons = [p.reason for p in up.refused]
    assert any("trkpt at line 1" in r and "out of range" in r for r in reasons)
    assert any("at least 2 valid points; it has 1 of 2" in r for r in reasons)


def test_a_bad_point_far_down_a_long_file_is_reported_at_its_own_line() -> None:
    """libxml2 keeps line numbers above 65,535 apart; the compiled point loop asks lxml."""
    good = '<wpt lat="44.5853" lon="129.6021"><time>2024-05-01T08:00:00Z</time></wpt>\n'
    bad = '<wpt lat="44.5853" lon="129.6021"><ele>abc</ele></wpt>\n'
    raw = (
        '<gpx version="1.1" creator="t" xmlns="http://www.topografix.com/GPX/1/1">\n'
        + good * 69_998
        + bad
        + "</gpx>\n"
    ).encode()
    up = read(raw)
    assert len(up.points) == 69_998
    (problem,) = up.refused
    assert problem.row == 69_999 and problem.field == "elevation"
    assert "wpt at line 70000" in problem.reason


def test_waypoints_routes_and_tracks_are_numbered_together_in_file_order() -> None:
    """Rows count wpt, rte and trk together; metadata is skipped; a child the compiled loop
    does not know (cmt, link, course, a foreign element) still becomes a property."""
    raw = (
        b'<gpx version="1.1" creator="Phone" xmlns="http://www.topografix.com/GPX/1/1" '
        b'xmlns:x="urn:x"><metadata><name>m</name></metadata>'
        b'<wpt lat="44.58" lon="129.60"><name> A </name><cmt>c</cmt><course>12.5</course>'
        b'<link href="http://a/"/><x:note>n</x:note><sym>Flag</sym></wpt>'
        b'<rte><name>R</name><rtept lat="44.58" lon="129.60"/><rtept lat="44.59" lon="129.61"/>'
        b"</rte>"
        b'<wpt lat="44.59" lon="129.61"><type>lamp_unlit</type><src>GPSMAP 66s</src></wpt>'
        b'<trk><trkseg><trkpt lat="44.58" lon="129.60"/><trkpt lat="44.59" lon="129.61"/>'
        b"</trkseg></trk></gpx>"
    )
    up = read(raw)
    first, second = up.points
    assert (first.row, first.name, first.kind, first.device) == (1, "A", "Flag", "Phone")
    assert first.properties == {
        "cmt": "c",
        "course": 12.5,
        "link": "http://a/",
        "note": "n",
        "sym": "Flag",
    }
    assert (second.row, second.kind, second.device) == (3, "lamp_unlit", "GPSMAP 66s")
    assert [(t.kind, {p.row for p in t.points}) for t in up.tracks] == [
        ("route", {2}),
        ("track", {4}),
    ]
