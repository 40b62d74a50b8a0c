"""KML placemarks and tracks, and KMZ archives (doc.kml plus images)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from data.field import InvalidUpload
from tests.data.field.samples import KML, LAMP, jpeg, kmz, read


def test_kml_points_lines_tracks_and_extended_data() -> None:
    up = read(KML.encode(), "巡查.kml")
    assert up.format == "kml"
    lamp, bin1, bin2 = up.points
    assert (lamp.lon, lamp.lat) == pytest.approx(LAMP, abs=1e-12)
    assert lamp.row == 1
    assert lamp.name == "路灯不亮"
    assert lamp.description == "<b>灯杆</b> L-0042"
    assert lamp.kind == "lamp_unlit"  # ExtendedData 类型
    assert lamp.device == "Mate 60"  # ExtendedData 设备
    assert lamp.accuracy_m == 4.5  # SchemaData accuracy
    assert lamp.elevation_m == 231.5
    assert lamp.observed_at == datetime(2024, 5, 1, 8, 30, tzinfo=UTC)
    assert lamp.properties == {"styleUrl": "#lamp", "folder": "巡查记录/路灯"}
    assert bin1.row == bin2.row == 2  # one MultiGeometry placemark, two points
    assert bin2.elevation_m == 0.0
    line, track = up.tracks
    assert line.kind == "line" and line.row == 3 and len(line.points) == 3
    assert track.kind == "track" and track.row == 4 and track.name == "轨迹"
    assert [p.observed_at for p in track.points] == [
        datetime(2024, 5, 1, 8, 0, s, tzinfo=UTC) for s in (0, 5, 10)
    ]
    assert [p.properties["heartrate"] for p in track.points] == [90.0, 92.0, 95.0]
    assert [p.elevation_m for p in track.points] == [230.0, 230.5, 231.0]


def test_polygons_are_refused_by_row_and_overlays_reported() -> None:
    up = read(KML.encode(), "巡查.kml")
    (polygon,) = up.refused
    assert polygon.row == 5 and polygon.field == "Polygon"
    assert "only points and lines" in polygon.reason
    assert any("GroundOverlay" in w.reason for w in up.warnings)


def test_gx_track_with_mismatched_when_and_coord_is_refused() -> None:
    raw = (
        b'<kml xmlns="http://www.opengis.net/kml/2.2" xmlns:gx="http://www.google.com/kml/ext/2.2">'
        b"<Placemark><gx:Track><when>2024-05-01T08:00:00Z</when>"
        b"<gx:coord>129.6 44.58 0</gx:coord><gx:coord>129.61 44.58 0</gx:coord>"
        b"</gx:Track></Placemark></kml>"
    )
    up = read(raw, "t.kml")
    assert up.tracks == []
    assert "1 <when> but 2 <gx:coord>" in up.refused[0].reason


def test_kml_naive_time_is_china_time_with_a_warning() -> None:
    raw = (
        b'<kml xmlns="http://www.opengis.net/kml/2.2"><Placemark>'
        b"<TimeStamp><when>2024-05-01T16:30:00</when></TimeStamp>"
        b"<Point><coordinates>129.6021,44.5853</coordinates></Point></Placemark></kml>"
    )
    up = read(raw, "t.kml")
    assert up.points[0].observed_at == datetime(2024, 5, 1, 8, 30, tzinfo=UTC)
    assert any("UTC+08:00" in w.reason for w in up.warnings)


def test_kml_22_beta_namespace_of_old_google_earth() -> None:
    raw = (
        b'<kml xmlns="http://earth.google.com/kml/2.1"><Document><Placemark><name>x</name>'
        b"<Point><coordinates>129.6021,44.5853,0</coordinates></Point></Placemark></Document></kml>"
    )
    assert read(raw, "old.kml").points[0].name == "x"


def test_kmz_reads_doc_kml_and_reports_the_other_files() -> None:
    raw = kmz({"doc.kml": KML.encode(), "files/lamp.jpg": jpeg(), "files/icon.png": b"\x89PNG"})
    up = read(raw, "巡查.kmz")
    assert up.format == "kmz"
    assert len(up.points) == 3 and len(up.tracks) == 2
    assert any("2 other file(s)" in w.reason and "files/lamp.jpg" in w.reason for w in up.warnings)


def test_kmz_without_doc_kml_uses_the_first_root_kml() -> None:
    raw = kmz({"images/a.png": b"x", "export.kml": KML.encode()})
    assert len(read(raw, "x.kmz").points) == 3


def test_zip_without_kml_is_refused() -> None:
    with pytest.raises(InvalidUpload, match=r"without a \.kml file"):
        read(kmz({"readme.txt": b"hello"}), "x.kmz")
