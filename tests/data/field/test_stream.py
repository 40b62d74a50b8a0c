"""A file read in chunks says exactly what it says read whole: points, tracks, refusals and
warnings, in the same order (the upload stores chunk k while chunk k+1 is read)."""

from __future__ import annotations

import gc

import pytest

from data.field import InvalidUpload, ParsedUpload, combine, stream_field_file
from tests.data.field.samples import (
    GPX11_GARMIN,
    JURISDICTION,
    KML,
    NOW,
    PROFILE,
    big_gpx,
    gpx_waypoints,
    nmea_log,
    read,
)

# Waypoints, a two-segment track, a route, a refused waypoint and times without a zone.
MIXED_GPX = gpx_waypoints(
    [(129.60 + i * 1e-4, 44.58) for i in range(7)], time="2024-05-01T08:00:00"
).replace(
    b"</gpx>",
    b'<wpt lat="95" lon="129.6"/>'
    b"<trk><name>t</name>"
    b'<trkseg><trkpt lat="44.58" lon="129.60"/><trkpt lat="44.581" lon="129.60"/></trkseg>'
    b'<trkseg><trkpt lat="44.582" lon="129.60"/><trkpt lat="44.583" lon="129.60"/></trkseg>'
    b"</trk>"
    b'<rte><rtept lat="44.58" lon="129.61"/><rtept lat="44.59" lon="129.61"/></rte>'
    b'<wpt lat="44.585" lon="129.605"><time>2024-05-01T09:00:00</time></wpt>'
    b"</gpx>",
)
CSV = (
    "经度,纬度,类型,时间\n"
    + "".join(f"129.60{i:02d},44.58,路灯不亮,2024-05-01 16:{i:02d}:00\n" for i in range(9))
    + "abc,44.58,路灯不亮,2024-05-01 17:00:00\n"
).encode()

FILES = {
    "mixed.gpx": MIXED_GPX,
    "garmin.gpx": GPX11_GARMIN.encode(),
    "obs.kml": KML.encode(),
    "obs.csv": CSV,
    "log.nmea": nmea_log(),
}


def chunks(raw: bytes, name: str, size: int) -> list[ParsedUpload]:
    return list(
        stream_field_file(
            raw, name, None, PROFILE, NOW, jurisdiction_bbox=JURISDICTION, chunk_size=size
        )
    )


@pytest.mark.parametrize("name", sorted(FILES))
@pytest.mark.parametrize("size", [1, 2, 3])
def test_small_chunks_combine_to_the_whole_file(name: str, size: int) -> None:
    raw = FILES[name]
    whole = read(raw, name, jurisdiction_bbox=JURISDICTION)
    parts = chunks(raw, name, size)
    assert combine(parts) == whole
    assert all(len(p.points) <= size for p in parts)


def test_the_mixed_gpx_really_is_split_and_warns_once() -> None:
    parts = chunks(MIXED_GPX, "mixed.gpx", 3)
    assert len(parts) >= 4
    whole = combine(parts)
    assert len(whole.points) == 8 and len(whole.tracks) == 3
    assert [p.row for p in whole.refused] == [8]
    naive = [w.reason for w in whole.warnings if "without a time zone" in w.reason]
    assert len(naive) == 1 and naive[0].startswith("8 time(s)")


def test_a_big_gpx_comes_in_chunks_of_the_asked_size() -> None:
    parts = chunks(big_gpx(2500), "big.gpx", 1000)
    assert [len(p.points) for p in parts] == [1000, 1000, 500]
    assert [p.points[0].row for p in parts] == [1, 1001, 2001]


def test_an_unreadable_file_fails_at_the_first_chunk_and_an_empty_one_after_the_last() -> None:
    with pytest.raises(InvalidUpload, match="not well-formed"):
        next(stream_field_file(b"<gpx><wpt", "cut.gpx", None, PROFILE, NOW))
    empty = stream_field_file(b'<gpx version="1.1"></gpx>', "e.gpx", None, PROFILE, NOW)
    first = next(empty)
    assert first.points == [] and first.tracks == []
    with pytest.raises(InvalidUpload, match="holds no points"):
        next(empty)
    assert gc.isenabled()


def test_a_stream_closed_early_resumes_the_garbage_collector() -> None:
    stream = stream_field_file(big_gpx(30), "big.gpx", None, PROFILE, NOW, chunk_size=10)
    next(stream)
    assert not gc.isenabled()  # paused while the file is being read
    stream.close()
    assert gc.isenabled()
