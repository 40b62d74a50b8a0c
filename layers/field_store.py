"""Storing a parsed field upload: one transaction, bulk COPY, snapping, asset changes, report.

The caller (HTTP route or CLI, gis_api.uploads) has parsed the file and named the writer
for the audit triggers; everything here runs inside its transaction, so a failure at any
step (a 403 on a matched asset in another grid, a constraint) leaves nothing behind.

Snapping rule (documented in docs/DATA_MODEL.md terms): an observation of an asset kind
with accuracy r (metres; device-reported, or HDOP x UERE) is matched to the nearest asset
of its layer, at geodesic distance d1, only when
  - d1 <= snap_tolerance_m, otherwise `no_asset`;
  - r is known and r <= max_snap_accuracy_m, otherwise `too_inaccurate`;
  - no second asset lies at d2 <= d1 + 2r, otherwise `ambiguous`.
Why 2r: the true position is anywhere within r of the reported one, so the true distance to
the nearest is at most d1 + r and to the second at least d2 - r; only d2 - r > d1 + r proves
the nearest is the right one. Candidates come from the geography GiST index (KNN `<->` on
geog within tolerance + 2r) and are ranked by spheroid distance.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

import orjson
import shapely
from sqlalchemy import Connection, text

from data.field import FieldPoint, FieldTrack, ParsedUpload
from data.problems import Problem
from layers.catalog import ILLEGAL_BUILDINGS, VENUES
from layers.observations import STATUS_FIELDS, Observation, resolve_kind
from layers.profile import FieldRules

REPORT_LIST_LIMIT: Final = 1000
"""Matched/unmatched/created entries listed in a report; the rest are counted (all stored)."""

Authorize = Callable[[Connection, Sequence[bytes]], None]
"""Raises when the writer may not touch these WGS-84 WKB geometries (grid rights)."""


@dataclass(frozen=True)
class UploadMeta:
    """What the client said about the file, and who sent it."""

    sha256: str
    size: int
    filename: str | None
    declared_crs: str | None
    kind: str | None = None
    layer: str | None = None
    note: str | None = None
    idempotency_key: str | None = None
    uploader_id: int | None = None
    uploader_name: str | None = None
    source: str = "http"


@dataclass
class Prepared:
    """The parsed upload after de-duplication and kind resolution (no database yet)."""

    points: list[FieldPoint]
    observations: list[Observation | None]
    duplicates: list[dict[str, int]] = field(default_factory=list)


def sha256_hex(raw: bytes) -> str:
    """The content hash an upload is known by."""
    return hashlib.sha256(raw).hexdigest()


def problem_json(problem: Problem) -> dict[str, Any]:
    """A refused point as the report and the 422 body list it."""
    out: dict[str, Any] = {"row": problem.row, "reason": problem.reason}
    if problem.field:
        out["field"] = problem.field
    if problem.value is not None:
        out["value"] = problem.value
    return out


def prepare(parsed: ParsedUpload, meta: UploadMeta) -> Prepared:
    """Drop exact in-file duplicates (listed, never silent) and resolve every point's kind.

    A duplicate is a point with the same position (1e-7 degree), time and kind as an earlier
    one in the file: the same waypoint exported twice, not two observations.
    """
    seen: dict[tuple[float, float, datetime | None, str | None], int] = {}
    points: list[FieldPoint] = []
    observations: list[Observation | None] = []
    duplicates: list[dict[str, int]] = []
    cache: dict[str | None, Observation | None] = {}
    for p in parsed.points:
        kind = p.kind or meta.kind
        key = (round(p.lon, 7), round(p.lat, 7), p.observed_at, kind)
        first = seen.get(key)
        if first is not None:
            duplicates.append({"row": p.row, "duplicate_of_row": first})
            continue
        seen[key] = p.row
        points.append(p)
        if kind not in cache:
            cache[kind] = resolve_kind(kind, meta.layer)
        observations.append(cache[kind])
    return Prepared(points, observations, duplicates)


def point_wkbs(points: Sequence[FieldPoint]) -> list[bytes]:
    """WGS-84 WKB of every point (vectorised: 100,000 points in milliseconds)."""
    if not points:
        return []
    geoms = shapely.points([p.lon for p in points], [p.lat for p in points])
    return [bytes(w) for w in shapely.to_wkb(geoms)]


def track_wkbs(tracks: Sequence[FieldTrack]) -> list[bytes]:
    """WGS-84 WKB of every track."""
    return [
        bytes(shapely.to_wkb(shapely.linestrings([(p.lon, p.lat) for p in t.points])))
        for t in tracks
        if len(t.points) >= 2
    ]


_INSERT_UPLOAD = text(
    """
    INSERT INTO uploads (sha256, idempotency_key, uploader_id, uploader_name, source, filename,
                         format, declared_crs, note, kind_hint, layer_hint, bytes, status, report)
    VALUES (:sha256, :key, :uploader_id, :uploader_name, :source, :filename, :format, :crs,
            :note, :kind, :layer, :bytes, :status, '{}'::jsonb)
    ON CONFLICT DO NOTHING
    RETURNING id
    """
)


def claim_upload(conn: Connection, meta: UploadMeta, parsed: ParsedUpload) -> int | None:
    """Insert the upload row; None when the same file or key is already stored.

    Two identical uploads in flight meet at the unique indexes: the second INSERT waits for
    the first transaction, then (once it commits) does nothing, so exactly one is stored.
    """
    row = conn.execute(
        _INSERT_UPLOAD,
        {
            "sha256": meta.sha256,
            "key": meta.idempotency_key,
            "uploader_id": meta.uploader_id,
            "uploader_name": meta.uploader_name,
            "source": meta.source,
            "filename": meta.filename,
            "format": parsed.format,
            "crs": meta.declared_crs,
            "note": meta.note,
            "kind": meta.kind,
            "layer": meta.layer,
            "bytes": meta.size,
            "status": "partial" if parsed.refused else "stored",
        },
    ).first()
    return None if row is None else int(row[0])


@dataclass(frozen=True)
class Existing:
    """An upload already stored under this hash or key."""

    id: int
    sha256: str
    idempotency_key: str | None
    report: dict[str, Any]


def find_existing(conn: Connection, sha256: str, key: str | None) -> list[Existing]:
    """Uploads stored with this content hash or this Idempotency-Key (at most two)."""
    rows = conn.execute(
        text(
            "SELECT id, sha256, idempotency_key, report FROM uploads "
            "WHERE sha256 = :sha OR (CAST(:key AS text) IS NOT NULL AND idempotency_key = :key) "
            "ORDER BY id"
        ),
        {"sha": sha256, "key": key},
    )
    return [Existing(int(r.id), r.sha256, r.idempotency_key, dict(r.report)) for r in rows]


def _json(value: dict[str, object]) -> str:
    return orjson.dumps(value, default=str).decode() if value else "{}"


def _store_photos(
    conn: Connection, upload_id: int, points: Sequence[FieldPoint]
) -> list[int | None]:
    ids: list[int | None] = []
    for p in points:
        if p.photo is None:
            ids.append(None)
            continue
        photo_id = conn.execute(
            text(
                "INSERT INTO field_photos (upload_id, sha256, content) "
                "VALUES (:u, :sha, :content) RETURNING id"
            ),
            {"u": upload_id, "sha": sha256_hex(p.photo), "content": p.photo},
        ).scalar_one()
        ids.append(int(photo_id))
    return ids


_POINT_COLUMNS: Final = (
    "upload_id, row, orig_x, orig_y, crs, observed_at, elevation_m, accuracy_m, hdop, pdop, "
    "vdop, satellites, device, kind, name, description, properties, photo_id, observation, "
    "snap, snap_reason, matched_layer, geom"
)


def copy_points(
    conn: Connection, upload_id: int, prepared: Prepared, kind_hint: str | None, tol: float
) -> None:
    """COPY every accepted point into field_points (the fast path for 100,000 points).

    Asset observations start as `no_asset` with its reason, so snapping rewrites only the
    rows that have a candidate asset nearby.
    """
    points = prepared.points
    has_photo = any(p.photo is not None for p in points)
    photo_ids = _store_photos(conn, upload_id, points) if has_photo else None
    raw = conn.connection.driver_connection
    assert raw is not None
    with raw.cursor() as cur, cur.copy(f"COPY field_points ({_POINT_COLUMNS}) FROM STDIN") as cp:
        for i, (p, obs) in enumerate(zip(points, prepared.observations, strict=True)):
            cp.write_row(
                (
                    upload_id,
                    p.row,
                    p.orig_x,
                    p.orig_y,
                    p.crs,
                    p.observed_at,
                    p.elevation_m,
                    p.accuracy_m,
                    p.hdop,
                    p.pdop,
                    p.vdop,
                    p.satellites,
                    p.device,
                    p.kind or kind_hint,
                    p.name,
                    p.description,
                    _json(p.properties),
                    photo_ids[i] if photo_ids else None,
                    None if obs is None else obs.key,
                    "not_an_asset_kind" if obs is None else "no_asset",
                    None if obs is None else f"no {obs.layer.id} asset within {tol:g} m",
                    None if obs is None else obs.layer.id,
                    f"SRID=4326;POINT({p.lon!r} {p.lat!r})",
                )
            )


def copy_tracks(conn: Connection, upload_id: int, tracks: Sequence[FieldTrack]) -> int:
    """Store every track of two or more vertices as a line; the number stored."""
    rows = []
    for t in tracks:
        if len(t.points) < 2:
            continue
        times = [p.observed_at for p in t.points if p.observed_at is not None]
        coords = ", ".join(f"{p.lon!r} {p.lat!r}" for p in t.points)
        rows.append(
            {
                "u": upload_id,
                "row": t.row,
                "kind": t.kind,
                "name": t.name,
                "n": len(t.points),
                "start": min(times) if times else None,
                "end": max(times) if times else None,
                "props": _json(t.properties),
                "wkt": f"SRID=4326;LINESTRING({coords})",
            }
        )
    if rows:
        conn.execute(
            text(
                "INSERT INTO field_tracks (upload_id, row, kind, name, vertices, started_at, "
                "ended_at, properties, geom) VALUES (:u, :row, :kind, :name, :n, :start, :end, "
                "CAST(:props AS jsonb), ST_GeomFromEWKT(:wkt))"
            ),
            rows,
        )
    return len(rows)


def set_point_grids(conn: Connection, upload_id: int) -> None:
    """Record the grid holding each point (same rule as the layers: level 'grid')."""
    conn.execute(
        text(
            "UPDATE field_points p SET grid_id = g.id FROM grids g "
            "WHERE p.upload_id = :u AND g.level = 'grid' AND ST_Intersects(g.geom, p.geom)"
        ),
        {"u": upload_id},
    )


def _snap_sql(table: str) -> str:
    # `table` comes from the catalog, never from the client.
    return f"""
    UPDATE field_points p SET
        snap = v.snap,
        snap_reason = v.reason,
        matched_id = CASE WHEN v.snap = 'matched' THEN v.ids[1] END,
        matched_code = CASE WHEN v.snap = 'matched' THEN v.codes[1] END,
        match_distance_m = CASE WHEN v.snap = 'matched' THEN round(v.ds[1]::numeric, 2) END
    FROM (
        SELECT c.id, c.ids, c.codes, c.ds,
            CASE
                WHEN c.ids IS NULL OR c.ds[1] > :tol THEN 'no_asset'
                WHEN c.acc IS NULL OR c.acc > :max_acc THEN 'too_inaccurate'
                WHEN c.ds[2] IS NOT NULL AND c.ds[2] - c.ds[1] <= 2 * c.acc THEN 'ambiguous'
                ELSE 'matched'
            END AS snap,
            CASE
                WHEN c.ids IS NULL OR c.ds[1] > :tol THEN
                    format('no %s asset within %s m', :layer, :tol)
                WHEN c.acc IS NULL THEN 'accuracy unknown (no hAcc, accuracy or HDOP)'
                WHEN c.acc > :max_acc THEN
                    format('accuracy %s m is worse than %s m', round(c.acc::numeric, 1), :max_acc)
                WHEN c.ds[2] IS NOT NULL AND c.ds[2] - c.ds[1] <= 2 * c.acc THEN
                    format('%s at %s m and %s at %s m are both possible at accuracy %s m',
                           c.codes[1], round(c.ds[1]::numeric, 2), c.codes[2],
                           round(c.ds[2]::numeric, 2), round(c.acc::numeric, 1))
            END AS reason
        FROM (
            SELECT q.id, q.accuracy_m AS acc, n.ids, n.codes, n.ds
            FROM field_points q
            LEFT JOIN LATERAL (
                SELECT array_agg(k.id ORDER BY k.d) AS ids,
                       array_agg(k.code ORDER BY k.d) AS codes,
                       array_agg(k.d ORDER BY k.d) AS ds
                FROM (
                    SELECT a.id, a.code, ST_Distance(a.geog, q.geog) AS d
                    FROM "{table}" a
                    WHERE ST_DWithin(a.geog, q.geog, :tol + 2 * LEAST(COALESCE(q.accuracy_m, 0),
                                                                       :max_acc))
                    ORDER BY a.geog <-> q.geog
                    LIMIT 4
                ) k
            ) n ON true
            WHERE q.upload_id = :u AND q.matched_layer = :layer
        ) c
    ) v
    WHERE p.id = v.id AND v.snap <> 'no_asset'
    """  # noqa: S608 - identifiers from the catalog


def snap(conn: Connection, upload_id: int, layers: set[str], rules: FieldRules) -> None:
    """Match the upload's asset observations to assets (rule in the module docstring)."""
    for layer_id in sorted(layers):
        spec = STATUS_FIELDS[layer_id][0]
        conn.execute(
            text(_snap_sql(spec.table)),
            {
                "u": upload_id,
                "layer": layer_id,
                "tol": rules.snap_tolerance_m,
                "max_acc": rules.max_snap_accuracy_m,
            },
        )


def matched_asset_wkbs(conn: Connection, upload_id: int, layers: set[str]) -> list[bytes]:
    """Geometries of the assets this upload matched, for the grid-rights check."""
    wkbs: list[bytes] = []
    for layer_id in sorted(layers):
        table = STATUS_FIELDS[layer_id][0].table
        rows = conn.execute(
            text(
                f'SELECT DISTINCT ST_AsBinary(a.geom) FROM "{table}" a JOIN field_points p '  # noqa: S608
                "ON p.matched_id = a.id WHERE p.upload_id = :u AND p.matched_layer = :layer "
                "AND p.snap = 'matched'"
            ),
            {"u": upload_id, "layer": layer_id},
        )
        wkbs.extend(bytes(r[0]) for r in rows)
    return wkbs


def apply_statuses(conn: Connection, upload_id: int, layers: set[str]) -> list[dict[str, Any]]:
    """Set each matched asset's status through an ordinary UPDATE (the audit trigger records it).

    Of several observations of one asset the latest wins; an observation older than the
    asset's last inspection changes nothing (an old file must not undo a newer repair).
    """
    changes: list[dict[str, Any]] = []
    for layer_id in sorted(layers):
        spec, column, _ = STATUS_FIELDS[layer_id]
        has_inspected = "last_inspected" in spec.field_names()
        stamp = ", last_inspected = COALESCE(m.observed_at, now())" if has_inspected else ""
        fresh = (
            " AND (m.observed_at IS NULL OR a.last_inspected IS NULL"
            " OR m.observed_at >= a.last_inspected)"
            if has_inspected
            else ""
        )
        rows = conn.execute(
            text(
                f"""
                UPDATE "{spec.table}" a SET "{column}" = m.value{stamp}
                FROM (
                    SELECT DISTINCT ON (p.matched_id) p.matched_id, p.id AS point_id,
                           split_part(p.observation, ':', 2) AS value, p.observed_at,
                           t."{column}" AS old
                    FROM field_points p JOIN "{spec.table}" t ON t.id = p.matched_id
                    WHERE p.upload_id = :u AND p.matched_layer = :layer AND p.snap = 'matched'
                    ORDER BY p.matched_id, p.observed_at DESC NULLS LAST, p.row DESC, p.id DESC
                ) m
                WHERE a.id = m.matched_id{fresh}
                RETURNING a.id, a.code, m.point_id, m.old, a."{column}" AS new
                """  # noqa: S608 - identifiers from the catalog
            ),
            {"u": upload_id, "layer": layer_id},
        )
        changes.extend(
            {
                "layer": layer_id,
                "id": int(r.id),
                "code": r.code,
                "point_id": int(r.point_id),
                "field": column,
                "old_status": r.old,
                "new_status": r.new,
            }
            for r in rows
        )
    return changes


def create_records(conn: Connection, upload_id: int, rules: FieldRules) -> None:
    """New illegal-building and venue records from the upload's observations.

    An illegal building is reported as a point; the record gets a provisional square
    footprint of `illegal_building_square_m` (4 m) centred on it, with
    properties.needs_survey = true, until someone surveys the real outline. Venues are
    points and go straight into `venues`, so `school-zones` sees them at once.
    """
    conn.execute(
        text(
            f"""
            WITH ins AS (
                INSERT INTO "{ILLEGAL_BUILDINGS.table}"
                    (code, status, discovered_on, properties, geom)
                SELECT 'WJ-F' || p.id, 'reported',
                       COALESCE((p.observed_at AT TIME ZONE 'Asia/Shanghai')::date, current_date),
                       jsonb_build_object('needs_survey', true, 'field_point_id', p.id,
                                          'upload_id', p.upload_id, 'reported_name', p.name,
                                          'footprint', 'provisional square, not surveyed'),
                       ST_Multi(ST_Transform(ST_Expand(ST_Transform(p.geom, 3857),
                                :half / cos(radians(ST_Y(p.geom)))), 4326))
                FROM field_points p
                WHERE p.upload_id = :u AND p.matched_layer = 'illegal_buildings'
                RETURNING id, code, (properties ->> 'field_point_id')::bigint AS point_id
            )
            UPDATE field_points f SET snap = 'created', matched_id = ins.id, matched_code = ins.code
            FROM ins WHERE f.id = ins.point_id
            """  # noqa: S608 - identifiers from the catalog
        ),
        {"u": upload_id, "half": rules.illegal_building_square_m / 2},
    )
    conn.execute(
        text(
            f"""
            WITH ins AS (
                INSERT INTO "{VENUES.table}" (code, name, venue_type, properties, geom)
                SELECT 'V-F' || p.id, COALESCE(p.name, '待核实场所'),
                       split_part(p.observation, ':', 2),
                       jsonb_build_object('needs_survey', true, 'field_point_id', p.id,
                                          'upload_id', p.upload_id),
                       p.geom
                FROM field_points p
                WHERE p.upload_id = :u AND p.matched_layer = 'venues'
                RETURNING id, code, (properties ->> 'field_point_id')::bigint AS point_id
            )
            UPDATE field_points f SET snap = 'created', matched_id = ins.id, matched_code = ins.code
            FROM ins WHERE f.id = ins.point_id
            """  # noqa: S608 - identifiers from the catalog
        ),
        {"u": upload_id},
    )


def _listing(conn: Connection, upload_id: int, where: str) -> tuple[list[dict[str, Any]], int]:
    rows = conn.execute(
        text(
            "SELECT id, row, kind, observation, snap, snap_reason, matched_layer, matched_id, "  # noqa: S608
            "matched_code, match_distance_m, accuracy_m, count(*) OVER () AS total "
            f"FROM field_points WHERE upload_id = :u AND {where} ORDER BY row, id LIMIT :limit"
        ),
        {"u": upload_id, "limit": REPORT_LIST_LIMIT},
    ).all()
    total = int(rows[0].total) if rows else 0
    return [dict(r._mapping) for r in rows], total


def build_report(
    conn: Connection,
    upload_id: int,
    meta: UploadMeta,
    parsed: ParsedUpload,
    prepared: Prepared,
    tracks: int,
    changes: list[dict[str, Any]],
) -> dict[str, Any]:
    """The upload report: what was accepted, refused, duplicated, matched, created, left."""
    created_at = conn.execute(
        text("SELECT created_at FROM uploads WHERE id = :u"), {"u": upload_id}
    ).scalar_one()
    applied = {c["point_id"]: c for c in changes}
    matched_rows, matched_total = _listing(conn, upload_id, "snap = 'matched'")
    matched = []
    for r in matched_rows:
        change = applied.get(r["id"])
        matched.append(
            {
                "row": r["row"],
                "point_id": r["id"],
                "layer": r["matched_layer"],
                "id": r["matched_id"],
                "code": r["matched_code"],
                "distance_m": float(r["match_distance_m"]),
                "accuracy_m": r["accuracy_m"],
                "observation": r["observation"],
                "old_status": change["old_status"] if change else None,
                "new_status": change["new_status"] if change else None,
                "applied": change is not None,
            }
        )
    created_rows, created_total = _listing(conn, upload_id, "snap = 'created'")
    unmatched_rows, unmatched_total = _listing(
        conn, upload_id, "snap IN ('ambiguous', 'too_inaccurate', 'no_asset')"
    )
    other = conn.execute(
        text(
            "SELECT count(*) FROM field_points WHERE upload_id = :u AND snap = 'not_an_asset_kind'"
        ),
        {"u": upload_id},
    ).scalar_one()
    return {
        "id": upload_id,
        "status": "partial" if parsed.refused else "stored",
        "filename": meta.filename,
        "format": parsed.format,
        "crs": parsed.crs,
        "sha256": meta.sha256,
        "uploader": meta.uploader_name,
        "created_at": created_at.isoformat(),
        "points_accepted": len(prepared.points),
        "tracks_accepted": tracks,
        "refused_count": len(parsed.refused),
        "refused": [problem_json(p) for p in parsed.refused],
        "warnings": [str(w) for w in parsed.warnings],
        "duplicates_count": len(prepared.duplicates),
        "duplicates": prepared.duplicates,
        "matched_count": matched_total,
        "matched": matched,
        "created_count": created_total,
        "created": [
            {
                "row": r["row"],
                "point_id": r["id"],
                "layer": r["matched_layer"],
                "id": r["matched_id"],
                "code": r["matched_code"],
            }
            for r in created_rows
        ],
        "unmatched_count": unmatched_total,
        "unmatched": [
            {
                "row": r["row"],
                "point_id": r["id"],
                "kind": r["kind"],
                "layer": r["matched_layer"],
                "status": r["snap"],
                "reason": r["snap_reason"],
                "needs_review": True,
            }
            for r in unmatched_rows
        ],
        "observations_without_asset_kind": int(other),
        "lists_truncated_at": REPORT_LIST_LIMIT,
    }


def save_report(conn: Connection, upload_id: int, report: dict[str, Any]) -> None:
    """Keep the report with the upload, so GET and every replay return it unchanged."""
    conn.execute(
        text("UPDATE uploads SET report = CAST(:r AS jsonb) WHERE id = :u"),
        {"u": upload_id, "r": orjson.dumps(report, default=str).decode()},
    )


def store_parsed(
    conn: Connection,
    upload_id: int,
    meta: UploadMeta,
    parsed: ParsedUpload,
    prepared: Prepared,
    rules: FieldRules,
    authorize_assets: Authorize,
) -> dict[str, Any]:
    """Everything after the upload row is claimed, in the caller's transaction."""
    copy_points(conn, upload_id, prepared, meta.kind, rules.snap_tolerance_m)
    tracks = copy_tracks(conn, upload_id, parsed.tracks)
    set_point_grids(conn, upload_id)
    status_layers = {
        o.layer.id for o in prepared.observations if o is not None and o.action == "status"
    }
    snap(conn, upload_id, status_layers, rules)
    authorize_assets(conn, matched_asset_wkbs(conn, upload_id, status_layers))
    changes = apply_statuses(conn, upload_id, status_layers)
    if any(o is not None and o.action == "create" for o in prepared.observations):
        create_records(conn, upload_id, rules)
    report = build_report(conn, upload_id, meta, parsed, prepared, tracks, changes)
    save_report(conn, upload_id, report)
    return report
