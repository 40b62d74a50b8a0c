"""Every format and CRS through HTTP, every bad input refused with nothing written,
partial uploads, idempotency by hash and by key, and 20 clients racing one file."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from data.crs import wgs84_to_bd09, wgs84_to_gcj02
from gis_api.auth import users
from tests.access import PASSWORD, clear_accounts
from tests.concurrency import at_once
from tests.data.field import samples
from tests.uploads.helpers import clear_uploads, client_for, counts, post


@pytest.fixture
def admin(engine: Engine) -> str:
    clear_uploads(engine)
    clear_accounts(engine)
    with engine.begin() as conn:
        return users.add_user(conn, "admin", "admin", password=PASSWORD)


@pytest.fixture
def client(database_url: str, admin: str, tmp_path: Path) -> Iterator[TestClient]:
    with client_for(database_url, tmp_path) as client:
        yield client


def _csv_gbk() -> bytes:
    return "经度,纬度,类型,时间\n129.6021,44.5853,路灯不亮,2024-05-01 16:30:00\n".encode("gb18030")


def _geojson() -> bytes:
    return json.dumps(
        {
            "type": "FeatureCollection",
            "features": [
                {
                    "type": "Feature",
                    "geometry": {"type": "Point", "coordinates": [129.6021, 44.5853]},
                    "properties": {"kind": "bin_missing", "accuracy": 3},
                }
            ],
        }
    ).encode()


FORMATS = {
    "gpx11.gpx": (samples.GPX11_GARMIN.encode(), "gpx"),
    "gpx10.gpx": (samples.GPX10.encode(), "gpx"),
    "health.gpx": (samples.GPX_APPLE.encode(), "gpx"),
    "obs.kml": (samples.KML.encode(), "kml"),
    "obs.kmz": (samples.kmz({"doc.kml": samples.KML.encode()}), "kmz"),
    "obs.geojson": (_geojson(), "geojson"),
    "obs.csv": (_csv_gbk(), "csv"),
    "log.nmea": (samples.nmea_log(), "nmea"),
    "photo.jpg": (samples.jpeg(), "jpeg"),
}


def test_every_format_is_stored_through_http(
    engine: Engine, client: TestClient, admin: str
) -> None:
    seen = {}
    for name, (raw, fmt) in FORMATS.items():
        response = post(client, admin, raw, name, params={"partial": "true"})
        assert response.status_code == 201, (name, response.text)
        report = response.json()
        assert report["format"] == fmt, name
        seen[name] = report
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM uploads")).scalar_one() == len(FORMATS)
        photo = conn.execute(text("SELECT content FROM field_photos")).scalar_one()
        tracks = conn.execute(text("SELECT count(*) FROM field_tracks")).scalar_one()
    for secret in samples.PERSONAL:
        assert secret not in bytes(photo)
    assert tracks >= 4
    # NMEA: the corrupted checksum is listed, not dropped.
    assert any("checksum" in r["reason"] for r in seen["log.nmea"]["refused"])


@pytest.mark.parametrize("crs", ["EPSG:4326", "GCJ-02", "BD-09", "EPSG:4490"])
def test_every_crs_is_converted_to_wgs84(
    engine: Engine, client: TestClient, admin: str, crs: str
) -> None:
    lon, lat = samples.LAMP
    if crs == "GCJ-02":
        x, y = (float(v) for v in wgs84_to_gcj02(lon, lat))
    elif crs == "BD-09":
        x, y = (float(v) for v in wgs84_to_bd09(lon, lat))
    else:
        x, y = lon, lat
    raw = samples.gpx_waypoints([(x, y)], time="2024-05-01T08:00:00Z")
    response = post(client, admin, raw, "p.gpx", crs=crs)
    assert response.status_code == 201, response.text
    with engine.connect() as conn:
        row = conn.execute(
            text(
                "SELECT ST_Distance(geom::geography, ST_MakePoint(:lon, :lat)::geography) AS d, "
                "orig_x, orig_y, crs FROM field_points"
            ),
            {"lon": lon, "lat": lat},
        ).one()
    assert row.d < 0.01
    assert (row.orig_x, row.orig_y) == pytest.approx((x, y), abs=1e-6)


BAD = {
    "truncated XML": (samples.GPX11_GARMIN.encode()[:400], "a.gpx", 400, "XML"),
    "entity bomb": (
        b'<?xml version="1.0"?><!DOCTYPE gpx [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]>'
        b'<gpx version="1.1" xmlns="http://www.topografix.com/GPX/1/1">&b;</gpx>',
        "a.gpx",
        400,
        "XML",
    ),
    "external entity": (
        b'<?xml version="1.0"?><!DOCTYPE gpx [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        b'<gpx version="1.1" xmlns="http://www.topografix.com/GPX/1/1">&x;</gpx>',
        "a.gpx",
        400,
        "XML",
    ),
    "empty file": (b"", "a.gpx", 400, "empty"),
    "non-image called .jpg": (b"hello, world\n", "a.jpg", 415, "not a JPEG"),
    "JPEG without GPS": (samples.jpeg(gps=False), "a.jpg", 400, "GPS"),
    "zip bomb": (
        samples.kmz({"doc.kml": b"<kml>" + b" " * 60_000_000 + b"</kml>"}),
        "a.kmz",
        400,
        "zip bomb",
    ),
    "KMZ path trick": (samples.kmz({"../../etc/doc.kml": samples.KML.encode()}), "a.kmz", 400, ""),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_each_bad_file_is_a_clear_4xx_and_nothing_is_written(
    engine: Engine, client: TestClient, admin: str, case: str
) -> None:
    raw, name, status, word = BAD[case]
    before = counts(engine)
    response = post(client, admin, raw, name)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert word.lower() in response.json()["detail"].lower()
    assert counts(engine) == before


BAD_POINTS = {
    "lat out of range": samples.gpx_raw_waypoint("95.0", "129.6"),
    "NaN": samples.gpx_raw_waypoint("NaN", "129.6"),
    "infinite": samples.gpx_raw_waypoint("44.58", "INF"),
    "swapped": samples.gpx_raw_waypoint("129.6021", "44.5853"),
    "future": samples.gpx_raw_waypoint("44.5853", "129.6021", "<time>2099-01-01T00:00:00Z</time>"),
    "outside China": samples.gpx_raw_waypoint("48.85", "2.35"),
}


@pytest.mark.parametrize("case", sorted(BAD_POINTS))
def test_each_bad_point_is_refused_by_row_and_nothing_is_written(
    engine: Engine, client: TestClient, admin: str, case: str
) -> None:
    before = counts(engine)
    response = post(client, admin, BAD_POINTS[case], "a.gpx")
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["refused"] and body["refused"][0]["row"] == 1
    assert counts(engine) == before


def test_over_the_size_limit_is_413_before_anything_is_read(
    engine: Engine, database_url: str, admin: str, tmp_path: Path
) -> None:
    profile = tmp_path / "city.toml"
    profile.write_text("[field]\nmax_upload_bytes = 1000\n")
    with client_for(database_url, tmp_path, profile=profile) as client:
        before = counts(engine)
        response = post(client, admin, samples.big_gpx(100), "big.gpx")
        assert response.status_code == 413 and "1,000" in response.json()["detail"]
        assert counts(engine) == before


def test_wrong_content_type_is_415(client: TestClient, admin: str) -> None:
    response = client.post(
        "/uploads",
        content=b"<gpx/>",
        headers={"Authorization": f"Bearer {admin}", "Content-Type": "application/gpx+xml"},
    )
    assert response.status_code == 415


def test_partial_stores_the_valid_points_and_lists_every_refusal(
    engine: Engine, client: TestClient, admin: str
) -> None:
    good = samples.gpx_waypoints([samples.LAMP, (129.6030, 44.5860)], time="2024-05-01T08:00:00Z")
    raw = good.replace(b"</gpx>", b'<wpt lat="95" lon="129.6"/><wpt lat="NaN" lon="129.6"/></gpx>')
    assert post(client, admin, raw, "mixed.gpx").status_code == 422
    response = post(client, admin, raw, "mixed.gpx", partial="true")
    assert response.status_code == 201, response.text
    report = response.json()
    assert report["status"] == "partial" and report["points_accepted"] == 2
    assert sorted(r["row"] for r in report["refused"]) == [3, 4]


def test_the_same_file_or_key_returns_the_first_report_and_writes_nothing(
    engine: Engine, client: TestClient, admin: str
) -> None:
    raw = samples.gpx_waypoints([samples.LAMP], time="2024-05-01T08:00:00Z")
    first = post(client, admin, raw, headers={"Idempotency-Key": "k-1"})
    assert first.status_code == 201
    before = counts(engine)
    by_hash = post(client, admin, raw)
    assert by_hash.status_code == 200 and by_hash.json() == first.json()
    assert by_hash.headers["Idempotent-Replayed"] == "true"
    # Same key, same content re-encoded by a retrying client (e.g. a re-export): same report.
    by_key = post(client, admin, raw, headers={"Idempotency-Key": "k-1"})
    assert by_key.status_code == 200 and by_key.json()["id"] == first.json()["id"]
    # Same key, different file: a client bug, refused rather than silently ignored.
    other = samples.gpx_waypoints([(129.6030, 44.5860)], time="2024-05-01T08:00:00Z")
    conflict = post(client, admin, other, headers={"Idempotency-Key": "k-1"})
    assert conflict.status_code == 409
    assert counts(engine) == before


def test_20_clients_resending_1000_points_store_exactly_1000(
    engine: Engine, client: TestClient, admin: str
) -> None:
    raw = samples.big_gpx(1000)
    statuses: list[int] = []

    def send(i: int) -> None:
        for attempt in range(3):  # a dropped answer: the client sends again
            response = post(
                client,
                admin,
                raw,
                "big.gpx",
                headers={"Idempotency-Key": f"device-{i % 2}"} if i % 3 else None,
            )
            statuses.append(response.status_code)
            if attempt == 0 and i % 4 == 0:
                continue
            break

    at_once(send, range(20))
    assert statuses.count(201) == 1 and set(statuses) <= {200, 201, 409}
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM uploads")).scalar_one() == 1
        assert conn.execute(text("SELECT count(*) FROM field_points")).scalar_one() == 1000
