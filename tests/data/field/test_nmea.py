"""NMEA 0183 logs from GPS and BeiDou receivers."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from data.field.nmea import checksum
from tests.data.field.samples import LAMP, nmea, nmea_log, read


def test_checksum_matches_the_published_examples() -> None:
    # The GGA/RMC examples every NMEA primer quotes, with their checksums.
    assert checksum("GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,") == "47"
    assert checksum("GPRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W") == "6A"


def test_a_receiver_log_becomes_one_timed_track() -> None:
    up = read(nmea_log(), "COM3.log")
    assert up.format == "nmea"
    (track,) = up.tracks
    assert track.kind == "track"
    first, second, third, fourth = track.points
    # Fix 1: GNRMC (date, speed) + GNGGA (alt, hdop, sats) + GNGSA (pdop, vdop).
    assert (first.lon, first.lat) == pytest.approx(LAMP, abs=1e-9)
    assert first.row == 1
    assert first.observed_at == datetime(2024, 5, 1, 8, 30, tzinfo=UTC)
    assert (first.elevation_m, first.hdop, first.satellites) == (231.5, 0.8, 12)
    assert (first.pdop, first.vdop) == (1.5, 1.3)
    assert first.accuracy_m == pytest.approx(0.8 * 5.0)
    assert first.properties == {
        "talker": "GN",
        "speed_knots": 0.52,
        "course_deg": 87.3,
        "fix_quality": 1,
        "geoid_separation_m": -8.2,
    }
    # Fix 2 from BeiDou talkers.
    assert second.properties["talker"] == "BD"
    assert second.observed_at == datetime(2024, 5, 1, 8, 30, 1, tzinfo=UTC)
    # Fix 3: its GBGGA had a bad checksum, so only GBRMC's position and date remain.
    assert third.row == 8 and third.properties["talker"] == "GB"
    assert third.hdop is None and third.elevation_m is None
    # Fix 5 is GGA only: the date comes from the fixes before it.
    assert fourth.row == 11
    assert fourth.observed_at == datetime(2024, 5, 1, 8, 30, 4, tzinfo=UTC)
    assert fourth.properties["fix_quality"] == 2


def test_a_bad_checksum_refuses_that_sentence_by_line() -> None:
    up = read(nmea_log(), "COM3.log")
    (bad,) = up.refused
    assert bad.row == 7 and bad.field == "GBGGA"
    assert "bad checksum" in bad.reason and "line 7" in bad.reason


def test_epochs_without_fix_and_ignored_sentences_are_reported() -> None:
    up = read(nmea_log(), "COM3.log")
    reasons = [w.reason for w in up.warnings]
    assert "1 epoch(s) without a position (no fix yet)" in reasons
    assert any("1 GSV sentence(s) ignored" in r for r in reasons)


def test_an_invalid_fix_with_a_stale_position_is_refused() -> None:
    lines = [
        nmea("GPRMC,083000.00,A,4435.1180,N,12936.1260,E,0.5,87.3,010524,,,A"),
        nmea("GPRMC,083001.00,V,4435.1180,N,12936.1260,E,0.5,87.3,010524,,,N"),
        nmea("GPRMC,083002.00,A,4435.1190,N,12936.1270,E,0.5,87.3,010524,,,A"),
    ]
    up = read("\n".join(lines).encode(), "log.nmea")
    assert len(up.tracks[0].points) == 2
    (refused,) = up.refused
    assert refused.row == 2 and "no valid fix" in refused.reason


def test_missing_checksum_and_garbage_lines_are_refused() -> None:
    lines = [
        nmea("GPRMC,083000.00,A,4435.1180,N,12936.1260,E,0.5,87.3,010524,,,A"),
        "$GPRMC,083001.00,A,4435.1180,N,12936.1260,E,0.5,87.3,010524,,,A",
        "# logger started",
        nmea("GPRMC,083002.00,A,4435.1190,N,12936.1270,E,0.5,87.3,010524,,,A"),
        "@@garbage@@",
    ]
    up = read("\n".join(lines).encode(), "log.nmea")
    assert [(p.row, "checksum" in p.reason) for p in up.refused] == [(2, True), (5, False)]
    assert "not an NMEA sentence" in up.refused[1].reason


def test_south_west_hemispheres_and_midnight_rollover() -> None:
    lines = [
        nmea("GPRMC,235959.00,A,4435.1180,N,12936.1260,E,0.5,87.3,310524,,,A"),
        nmea("GPGGA,000000.00,4435.1181,N,12936.1261,E,1,08,1.0,230.0,M,0,M,,"),
        nmea("GPGGA,000001.00,4435.1182,N,12936.1262,E,1,08,1.0,230.0,M,0,M,,"),
    ]
    up = read("\n".join(lines).encode(), "log.nmea", now=datetime(2024, 6, 2, tzinfo=UTC))
    times = [p.observed_at for p in up.tracks[0].points]
    assert times == [
        datetime(2024, 5, 31, 23, 59, 59, tzinfo=UTC),
        datetime(2024, 6, 1, 0, 0, 0, tzinfo=UTC),
        datetime(2024, 6, 1, 0, 0, 1, tzinfo=UTC),
    ]
    south = [
        nmea(f"GPGGA,12000{s}.00,3352.0000,S,15112.0000,W,1,08,1.0,10.0,M,0,M,,") for s in (0, 1)
    ]
    up = read("\n".join(south).encode(), "s.nmea")
    # Sydney's latitude with a western longitude: far outside China, refused as such.
    points = [p for p in up.refused if p.field == "coordinates"]
    assert [p.row for p in points] == [1, 2]
    assert all("outside China" in p.reason for p in points)
    assert "-151.200000, -33.866667" in points[0].reason
    assert any("it has 0 of 2" in p.reason for p in up.refused)


def test_gga_only_log_has_no_dates_and_says_so() -> None:
    lines = [
        nmea("GPGGA,083000.00,4435.1180,N,12936.1260,E,1,08,1.0,230.0,M,0,M,,"),
        nmea("GPGGA,083001.00,4435.1181,N,12936.1261,E,1,08,1.0,230.0,M,0,M,,"),
    ]
    up = read("\n".join(lines).encode(), "log.nmea")
    assert [p.observed_at for p in up.tracks[0].points] == [None, None]
    assert any("no date" in w.reason for w in up.warnings)


def test_bad_minutes_are_refused() -> None:
    lines = [
        nmea("GPGGA,083000.00,4475.1180,N,12936.1260,E,1,08,1.0,230.0,M,0,M,,"),
        nmea("GPGGA,083001.00,4435.1181,N,12936.1261,E,1,08,1.0,230.0,M,0,M,,"),
        nmea("GPGGA,083002.00,4435.1182,N,12936.1262,E,1,08,1.0,230.0,M,0,M,,"),
    ]
    up = read("\n".join(lines).encode(), "log.nmea")
    (bad,) = up.refused
    assert bad.row == 1 and bad.field == "latitude" and "ddmm.mmmm" in bad.reason
