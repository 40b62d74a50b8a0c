"""Field files in the tiny city (local metres → WGS-84), clients and database snapshots."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from shapely.geometry import Point
from sqlalchemy import Engine, text

from gis_api.app import create_app
from gis_api.settings import Settings
from layers.catalog import CATALOG
from tests.access import bearer
from tests.tiny_city import wgs

FIELD_TABLES = ("uploads", "field_points", "field_tracks", "field_photos")
ALL_TABLES = (*FIELD_TABLES, "audit_log", *(s.table for s in CATALOG))


def lonlat(x: float, y: float) -> tuple[float, float]:
    """WGS-84 lon/lat of a tiny-city point given in local metres."""
    p = wgs(Point(x, y))
    return float(p.x), float(p.y)


def gpx(
    waypoints: list[dict[str, Any]], tracks: list[list[tuple[float, float]]] | None = None
) -> bytes:
    """GPX 1.1 (topografix schema) with waypoints {x, y, type?, hdop?, name?, time?, device?}
    in metres (`device` is the waypoint's <src>)."""
    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<gpx version="1.1" creator="civic-gis tests" '
        'xmlns="http://www.topografix.com/GPX/1/1">\n'
    ]
    for i, w in enumerate(waypoints, start=1):
        lon, lat = lonlat(w["x"], w["y"])
        parts.append(f'<wpt lat="{lat:.9f}" lon="{lon:.9f}">')
        if w.get("time", "") is not None:  # time=None: a waypoint without a time
            parts.append(f"<time>{w.get('time', '2026-11-26T12:00:00Z')}</time>")
        parts.append(f"<name>{w.get('name', f'W{i}')}</name>")
        if "device" in w:
            parts.append(f"<src>{w['device']}</src>")
        if "type" in w:
            parts.append(f"<type>{w['type']}</type>")
        if "hdop" in w:
            parts.append(f"<hdop>{w['hdop']}</hdop>")
        parts.append("</wpt>\n")
    for track in tracks or []:
        parts.append("<trk><name>巡查</name><trkseg>")
        for j, (x, y) in enumerate(track):
            lon, lat = lonlat(x, y)
            parts.append(
                f'<trkpt lat="{lat:.9f}" lon="{lon:.9f}">'
                f"<time>2026-11-26T12:{j // 60:02d}:{j % 60:02d}Z</time></trkpt>"
            )
        parts.append("</trkseg></trk>\n")
    parts.append("</gpx>\n")
    return "".join(parts).encode()


def clear_uploads(engine: Engine) -> None:
    """Empty the upload tables."""
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {', '.join(FIELD_TABLES)} RESTART IDENTITY CASCADE"))


def counts(engine: Engine) -> dict[str, int]:
    """Rows of every table a failed upload must leave alone."""
    with engine.connect() as conn:
        return {
            t: int(conn.execute(text(f'SELECT count(*) FROM "{t}"')).scalar_one())
            for t in ALL_TABLES
        }


@contextmanager
def client_for(database_url: str, tmp_path: Path, **settings: Any) -> Iterator[TestClient]:
    """A TestClient of a fresh app on the test database."""
    app = create_app(Settings(database_url=database_url, state_dir=tmp_path / "state", **settings))
    with TestClient(app) as client:
        yield client


def post(
    client: TestClient,
    token: str | None,
    raw: bytes,
    name: str = "field.gpx",
    *,
    headers: dict[str, str] | None = None,
    params: dict[str, str] | None = None,
    **form: str,
) -> Any:
    """POST /uploads with one file and form fields."""
    h = dict(bearer(token)) if token else {}
    h.update(headers or {})
    return client.post("/uploads", files={"file": (name, raw)}, data=form, headers=h, params=params)


def lamp_status(engine: Engine, code: str) -> str:
    """The stored status of a lamp."""
    with engine.connect() as conn:
        return str(
            conn.execute(
                text("SELECT status FROM street_lamps WHERE code = :c"), {"c": code}
            ).scalar_one()
        )
