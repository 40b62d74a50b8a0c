"""Every point checked and converted: CRS, swapped axes, ranges, jurisdiction, clock."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from data.crs import parse_crs, wgs84_to_bd09, wgs84_to_gcj02
from data.field import InvalidUpload
from tests.data.field.samples import (
    JURISDICTION,
    LAMP,
    NOW,
    gpx_raw_waypoint,
    gpx_waypoints,
    jpeg,
    kmz,
    nmea,
    read,
)

TIME_NOW = NOW.isoformat().replace("+00:00", "Z")


def test_wgs84_is_the_default_and_is_not_moved() -> None:
    up = read(gpx_waypoints([LAMP]))
    point = up.points[0]
    assert up.crs == "EPSG:4326" and point.crs == "EPSG:4326"
    assert (point.lon, point.lat) == (point.orig_x, point.orig_y) == LAMP


@pytest.mark.parametrize(
    ("declared", "forward"),
    [
        ("GCJ-02", wgs84_to_gcj02),
        ("gcj02", wgs84_to_gcj02),
        ("BD-09", wgs84_to_bd09),
        ("bd09ll", wgs84_to_bd09),
    ],
)
def test_gcj02_and_bd09_are_converted_back_to_wgs84(declared: str, forward: object) -> None:
    assert callable(forward)
    x, y = forward(*LAMP)
    shifted = (float(x), float(y))
    assert abs(shifted[0] - LAMP[0]) > 0.003  # hundreds of metres: the shift is real
    for raw in (gpx_waypoints([shifted]), f"lon,lat\n{shifted[0]!r},{shifted[1]!r}\n".encode()):
        point = read(raw, crs=declared).points[0]
        assert (point.lon, point.lat) == pytest.approx(LAMP, abs=1e-8)  # ~1 mm
        assert (point.orig_x, point.orig_y) == pytest.approx(shifted, abs=1e-12)


def test_cgcs2000_geographic_equals_wgs84_to_the_centimetre() -> None:
    up = read(gpx_waypoints([LAMP]), crs="CGCS2000")
    assert up.crs == "EPSG:4490"
    assert (up.points[0].lon, up.points[0].lat) == pytest.approx(LAMP, abs=1e-7)


def test_unknown_or_projected_crs_for_a_degrees_format_is_refused() -> None:
    with pytest.raises(InvalidUpload, match="declared CRS: unknown CRS 'Mars'"):
        read(gpx_waypoints([LAMP]), crs="Mars")
    with pytest.raises(InvalidUpload, match="GPX stores longitude/latitude in degrees"):
        read(gpx_waypoints([LAMP]), crs="EPSG:4552")


def test_swapped_latitude_and_longitude_are_named_as_such() -> None:
    up = read(gpx_waypoints([(LAMP[1], LAMP[0])]))  # lat written as lon
    (problem,) = up.refused
    assert "appear swapped" in problem.reason and problem.row == 1


def test_swapped_inside_the_valid_range_is_caught_through_the_jurisdiction() -> None:
    # Urumqi (87.6E, 43.8N) swapped is (43.8, 87.6): a valid lon/lat, in Kazakhstan's latitudes.
    urumqi = (87.3, 43.6, 87.9, 44.1)
    up = read(gpx_waypoints([(43.8, 87.6)]), jurisdiction_bbox=urumqi)
    assert "appear swapped" in up.refused[0].reason and "jurisdiction" in up.refused[0].reason
    # Without a jurisdiction China's extent decides, with the same verdict.
    assert "appear swapped" in read(gpx_waypoints([(43.8, 87.6)])).refused[0].reason


@pytest.mark.parametrize(
    ("lat", "lon", "words"),
    [
        ("95", "129.6", "out of range"),
        ("44.58", "200", "out of range"),
        ("NaN", "129.6", "NaN or infinite"),
        ("44.58", "-inf", "NaN or infinite"),
        ("48.8584", "2.2945", "outside China"),
        ("", "129.6", "latitude is missing"),
        ("44,58", "129.6", "latitude is not a number"),
    ],
)
def test_impossible_coordinates_refuse_the_point(lat: str, lon: str, words: str) -> None:
    up = read(gpx_raw_waypoint(lat, lon))
    assert up.points == []
    (problem,) = up.refused
    assert words in problem.reason, problem.reason
    assert problem.row == 1


def test_outside_the_jurisdiction_is_refused_or_flagged() -> None:
    beijing = (116.397, 39.909)
    raw = gpx_waypoints([LAMP, beijing])
    refused = read(raw, jurisdiction_bbox=JURISDICTION)
    assert [p.name for p in refused.points] == ["P1"]
    assert "outside the jurisdiction" in refused.refused[0].reason and refused.refused[0].row == 2
    flagged = read(raw, jurisdiction_bbox=JURISDICTION, outside_jurisdiction="flag")
    assert [p.name for p in flagged.points] == ["P1", "P2"] and flagged.refused == []
    assert "outside the jurisdiction" in flagged.warnings[0].reason
    assert flagged.warnings[0].row == 2


def test_bad_jurisdiction_box_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="jurisdiction_bbox"):
        read(gpx_waypoints([LAMP]), jurisdiction_bbox=(130.0, 44.0, 129.0, 45.0))


def test_future_timestamps_beyond_the_clock_skew_are_refused() -> None:
    soon = (NOW + timedelta(minutes=4)).isoformat()
    late = (NOW + timedelta(minutes=6)).isoformat()
    up = read(
        gpx_raw_waypoint("44.5853", "129.6021", f"<time>{soon}</time>")[:-6]
        + f'<wpt lat="44.5853" lon="129.6021"><time>{late}</time></wpt></gpx>'.encode()
    )
    assert len(up.points) == 1
    (problem,) = up.refused
    assert problem.row == 2 and problem.field == "time" and "in the future" in problem.reason
    assert "5 min clock skew" in problem.reason
    assert read(up_raw := gpx_waypoints([LAMP], time=late), clock_skew=timedelta(minutes=10)).points
    assert up_raw


def test_now_must_be_aware() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        read(gpx_waypoints([LAMP]), now=NOW.replace(tzinfo=None))


def test_accuracy_prefers_the_reported_one_then_hdop_times_uere() -> None:
    raw = (
        b'<gpx version="1.1" creator="t" xmlns="http://www.topografix.com/GPX/1/1">'
        b'<wpt lat="44.5853" lon="129.6021"><hdop>2</hdop>'
        b"<extensions><hAcc>3.5</hAcc></extensions></wpt>"
        b'<wpt lat="44.5853" lon="129.6021"><hdop>2</hdop></wpt>'
        b'<wpt lat="44.5853" lon="129.6021"><pdop>2</pdop></wpt></gpx>'
    )
    assert [p.accuracy_m for p in read(raw).points] == [3.5, 10.0, None]


def test_one_bad_point_never_hides_the_others() -> None:
    points = [LAMP, (LAMP[1], LAMP[0]), (2.2945, 48.8584), (129.61, 44.59)]
    up = read(gpx_waypoints(points), jurisdiction_bbox=JURISDICTION)
    assert len(up.points) + len(up.refused) == len(points)
    assert [p.row for p in up.points] == [1, 4]
    assert [p.row for p in up.refused] == [2, 3]


def test_every_format_names_its_crs_on_every_point() -> None:
    crs = parse_crs("GCJ-02")
    up = read(gpx_waypoints([LAMP]), crs="GCJ-02")
    assert {p.crs for p in up.points} == {crs.name}


def _nmea_angle(value: float, digits: int) -> str:
    degrees = int(value)
    return f"{degrees:0{digits}d}{(value - degrees) * 60:08.5f}"


def _as_format(fmt: str, x: float, y: float) -> bytes:
    """The same observation written in each format, coordinates as given."""
    if fmt == "gpx":
        return gpx_waypoints([(x, y)])
    if fmt == "kml":
        return (
            '<kml xmlns="http://www.opengis.net/kml/2.2"><Placemark>'
            f"<Point><coordinates>{x!r},{y!r}</coordinates></Point></Placemark></kml>"
        ).encode()
    if fmt == "kmz":
        return kmz({"doc.kml": _as_format("kml", x, y)})
    if fmt == "geojson":
        return json.dumps({"type": "Point", "coordinates": [x, y]}).encode()
    if fmt == "csv":
        return f"经度,纬度\n{x!r},{y!r}\n".encode("gb18030")
    if fmt == "nmea":
        fixes = [
            nmea(f"GNGGA,08300{s}.00,{_nmea_angle(y, 2)},N,{_nmea_angle(x, 3)},E,1,9,1,1,M,0,M,,")
            for s in (0, 1)
        ]
        return "\r\n".join(fixes).encode()
    return jpeg(x, y)


FORMATS = ["gpx", "kml", "kmz", "geojson", "csv", "nmea", "jpeg"]
CRSS = ["WGS84", "GCJ-02", "BD-09", "CGCS2000"]


@pytest.mark.parametrize("declared", CRSS)
@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_honours_every_declared_crs(fmt: str, declared: str) -> None:
    x, y = (float(v) for v in parse_crs(declared).from_wgs84(*LAMP))
    up = read(_as_format(fmt, x, y), f"obs.{fmt}", crs=declared)
    assert up.format == fmt and up.refused == []
    points = up.points or list(up.tracks[0].points)
    # NMEA keeps 1e-5 minutes (2 cm), EXIF 1e-4 arc seconds (3 mm): tolerances to match.
    tolerance = {"nmea": 2e-7, "jpeg": 5e-8}.get(fmt, 1e-9)
    assert (points[0].lon, points[0].lat) == pytest.approx(LAMP, abs=tolerance)
    assert points[0].crs == parse_crs(declared).name
