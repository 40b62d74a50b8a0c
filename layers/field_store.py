"""Storing a parsed field upload: one transaction, bulk COPY, snapping, asset changes, report.

The caller (gis_api.uploads, for the HTTP route and the CLI) reads the file in chunks, names
the writer for the audit triggers, looks each chunk up (`look_up_chunk`, on a second
connection), writes it (`write_chunk`) and ends with `finish_upload`, all writes in one
transaction, so a failure at any step (a 403 on a matched asset in another grid, a
constraint) leaves nothing behind.

How a chunk is written: its points' lookup keys (position, time, device, kind, accuracy,
layer) are COPYed into a temporary staging table of the lookup connection; one set-based
statement over it finds the points an earlier upload already stored, each point's grid and
each asset observation's snap verdict (`look_up`), returning only the points that differ
from their prepared row; then the final rows go into field_points in one binary COPY.
Writing field_points is the expensive part (indexes, reference checks, WAL; migration 0009
made it cheaper): COPY costs about 25% less server time per row than INSERT ... SELECT from a
full staging table (measured), and setting grid and snap by UPDATE afterwards would write
every row twice.

Duplicates (`duplicate_keys`): two points are one observation when device, observed time,
kind and position (lon/lat x 1e7 rounded half-even, i.e. 1e-7 degree, about 1 cm) agree:
the same waypoint exported twice, or re-sent in another file after a dropped answer. Within
a file the later copies are dropped before staging; across uploads a staged point matching
a stored one is dropped (`look_up`), under the uploader's lock so that two
overlapping uploads in flight cannot both store it. A point without a time is only compared
within its file: elsewhere it cannot be told from a new visit to the same place. Every
duplicate is listed in the report, with the upload, row and point it repeats.

Snapping rule (documented in docs/DATA_MODEL.md terms): an observation of an asset kind
with accuracy r (metres; device-reported, or HDOP x UERE) is matched to the nearest asset
of its layer, at geodesic distance d1, only when
  - d1 <= snap_tolerance_m, otherwise `no_asset`;
  - r is known and r <= max_snap_accuracy_m, otherwise `too_inaccurate`;
  - no second asset lies at d2 <= d1 + 2r, otherwise `ambiguous`.
Why 2r: the true position is anywhere within r of the reported one, so the true distance to
the nearest is at most d1 + r and to the second at least d2 - r; only d2 - r > d1 + r proves
the nearest is the right one. Candidates are every asset within tolerance + 2r, found in one
join on the assets' geography GiST index, ranked by spheroid distance.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

import numpy as np
import orjson
import shapely
from numpy.typing import NDArray
from sqlalchemy import Connection, Row, text

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
    """A chunk after de-duplication and kind resolution, as rows ready to write.

    Built by the thread that reads the file, not by the one that waits on the database:
    `staged` holds each point's lookup keys (`_STAGING` columns), `rows` its field_points row
    (`_POINTS` columns) with the defaults a lookup may override (grid, snap, duplicate).
    """

    points: list[FieldPoint] = field(default_factory=list)
    observations: list[Observation | None] = field(default_factory=list)
    staged: list[tuple[Any, ...]] = field(default_factory=list)
    rows: list[tuple[Any, ...]] = field(default_factory=list)
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


POSITION_SCALE: Final = 1e7
"""Positions are compared as round(degrees x 1e7): Python's round and PostgreSQL's round of
a double both round half to even, so a key computed here equals the one computed in SQL."""

DuplicateKey = tuple[str | None, datetime | None, str | None, int, int]


Floats = NDArray[np.float64]


def duplicate_keys(
    points: Sequence[FieldPoint], kinds: Sequence[str | None], lon: Floats, lat: Floats
) -> list[DuplicateKey]:
    """(device, observed_at, kind, lon x 1e7, lat x 1e7) of every point (see module doc)."""
    lon7 = np.rint(lon * POSITION_SCALE).astype(np.int64).tolist()
    lat7 = np.rint(lat * POSITION_SCALE).astype(np.int64).tolist()
    devices = [p.device for p in points]
    times = [p.observed_at for p in points]
    return list(zip(devices, times, kinds, lon7, lat7, strict=True))


_EWKB_POINT: Final = np.dtype(
    [("order", "u1"), ("type", "<u4"), ("srid", "<u4"), ("x", "<f8"), ("y", "<f8")]
)


def point_ewkbs(lon: Floats, lat: Floats) -> list[bytes]:
    """EWKB of WGS-84 points (little-endian Point with SRID 4326, 25 bytes each), as
    field_points.geom receives it in binary COPY; built in numpy, not per point in GEOS."""
    packed = np.empty(lon.size, _EWKB_POINT)
    packed["order"] = 1
    packed["type"] = 0x20000001  # Point, with the SRID flag
    packed["srid"] = 4326
    packed["x"] = lon
    packed["y"] = lat
    raw = packed.tobytes()
    size = _EWKB_POINT.itemsize
    return [raw[i : i + size] for i in range(0, len(raw), size)]


class Preparer:
    """In-file duplicates, kinds and rows for the chunks of one upload, in file order.

    A duplicate is listed with the row of its first copy, which may lie in an earlier chunk.
    Rows are built a column at a time: a list per field, zipped, is several times cheaper
    than a tuple per point built in a loop.
    """

    def __init__(self, meta: UploadMeta, upload_id: int, rules: FieldRules) -> None:
        self._meta = meta
        self._upload_id = upload_id
        self._tolerance = f"{rules.snap_tolerance_m:g}"
        self._first_row: dict[DuplicateKey, int] = {}
        self._resolved: dict[str | None, Observation | None] = {}

    def _per_kind(self, kind: str | None) -> tuple[Any, ...]:
        """(observation, layer, canonical kind, snap, snap_reason) a point of this kind starts
        with, worked out once per kind, not once per point."""
        if kind not in self._resolved:
            self._resolved[kind] = resolve_kind(kind, self._meta.layer)
        obs = self._resolved[kind]
        if obs is None:
            return (None, None, None, "not_an_asset_kind", None)
        layer = obs.layer.id
        return (obs, layer, obs.key, "no_asset", f"no {layer} asset within {self._tolerance} m")

    def _first_copies(
        self, parsed: ParsedUpload, keys: list[DuplicateKey]
    ) -> tuple[list[int], list[dict[str, int]]]:
        """Indexes of the points not seen before in the file, and the duplicates of the rest."""
        rows = [p.row for p in parsed.points]
        first_row = self._first_row
        if len(set(keys)) == len(keys) and first_row.keys().isdisjoint(keys):
            first_row.update(zip(keys, rows, strict=True))  # the usual case, without a loop
            return list(range(len(keys))), []
        keep, duplicates = [], []
        for i, (key, row) in enumerate(zip(keys, rows, strict=True)):
            seen = len(first_row)
            first = first_row.setdefault(key, row)
            if len(first_row) > seen:
                keep.append(i)
            else:
                duplicates.append({"row": row, "duplicate_of_row": first})
        return keep, duplicates

    def prepare(self, parsed: ParsedUpload) -> Prepared:
        """The chunk's points less duplicates, each with its observation and rows."""
        every = parsed.points
        n = len(every)
        kinds = [p.kind or self._meta.kind for p in every]
        lon = np.fromiter((p.lon for p in every), np.float64, n)
        lat = np.fromiter((p.lat for p in every), np.float64, n)
        keep, duplicates = self._first_copies(parsed, duplicate_keys(every, kinds, lon, lat))
        if len(keep) < n:
            every = [every[i] for i in keep]
            kinds = [kinds[i] for i in keep]
            lon, lat = lon[keep], lat[keep]
        m = len(every)
        per_kind = {kind: self._per_kind(kind) for kind in set(kinds)}
        observations, layers, obs_keys, snaps, reasons = (
            (list(column) for column in zip(*(per_kind[k] for k in kinds), strict=True))
            if m
            else ([], [], [], [], [])
        )
        times = [p.observed_at for p in every]
        devices = [p.device for p in every]
        accuracies = [p.accuracy_m for p in every]
        nothing = [None] * m
        staged = zip(
            range(m),
            lon.tolist(),
            lat.tolist(),
            times,
            devices,
            kinds,
            accuracies,
            layers,
            strict=True,
        )
        rows = zip(
            [self._upload_id] * m,
            [p.row for p in every],
            [p.orig_x for p in every],
            [p.orig_y for p in every],
            [p.crs for p in every],
            times,
            [p.elevation_m for p in every],
            accuracies,
            [p.hdop for p in every],
            [p.pdop for p in every],
            [p.vdop for p in every],
            [p.satellites for p in every],
            devices,
            kinds,
            [p.name for p in every],
            [p.description for p in every],
            [_jsonb(p.properties) for p in every],
            nothing,  # photo_id: when stored
            nothing,  # grid_id: looked up
            obs_keys,
            snaps,
            reasons,
            layers,
            nothing,  # matched_id, matched_code, match_distance_m: snapping
            nothing,
            nothing,
            point_ewkbs(lon, lat),
            strict=True,
        )
        return Prepared(every, observations, list(staged), list(rows), duplicates)


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


def claim_upload(conn: Connection, meta: UploadMeta, fmt: str) -> int | None:
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
            "format": fmt,
            "crs": meta.declared_crs,
            "note": meta.note,
            "kind": meta.kind,
            "layer": meta.layer,
            "bytes": meta.size,
            "status": "stored",  # until save_report knows
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


_EMPTY_JSONB: Final = b"\x01{}"


def _jsonb(value: dict[str, object]) -> bytes:
    """jsonb in binary wire format: version 1, then the JSON text."""
    return b"\x01" + orjson.dumps(value, default=str) if value else _EMPTY_JSONB


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


# The staging table holds what the lookups need of each point of a chunk (Prepared.staged,
# in this column order), `ord` its index in the chunk. It has no geometry columns: generated
# ones cost 0.18 s of server time per 100,000 points (measured), paid even by points no
# lookup places. The grid and snapping lookups build each point where they need it, on the
# probing side of the join, so the grids' and assets' GiST indexes still answer (TRAPS: only
# a cast on the indexed column defeats them).
_STAGING: Final = (
    ("ord", "int4"),
    ("lon", "float8"),
    ("lat", "float8"),
    ("observed_at", "timestamptz"),
    ("device", "text"),
    ("kind", "text"),
    ("accuracy_m", "float8"),
    ("matched_layer", "text"),
)
_CREATE_STAGING: Final = text(
    "CREATE TEMPORARY TABLE IF NOT EXISTS upload_points ("
    + ", ".join(f"{name} {kind}" for name, kind in _STAGING)
    + ") ON COMMIT DROP"
)
_STAGED_POINT: Final = "ST_SetSRID(ST_MakePoint(s.lon, s.lat), 4326)"
"""A staged point's geometry, built where a lookup needs it."""

# field_points as written (Prepared.rows, in this column order): binary COPY, geom as EWKB.
_POINTS: Final = (
    ("upload_id", "int8"),
    ("row", "int4"),
    ("orig_x", "float8"),
    ("orig_y", "float8"),
    ("crs", "text"),
    ("observed_at", "timestamptz"),
    ("elevation_m", "float8"),
    ("accuracy_m", "float8"),
    ("hdop", "float8"),
    ("pdop", "float8"),
    ("vdop", "float8"),
    ("satellites", "int4"),
    ("device", "text"),
    ("kind", "text"),
    ("name", "text"),
    ("description", "text"),
    ("properties", "jsonb"),
    ("photo_id", "int8"),
    ("grid_id", "int8"),
    ("observation", "text"),
    ("snap", "text"),
    ("snap_reason", "text"),
    ("matched_layer", "text"),
    ("matched_id", "int8"),
    ("matched_code", "text"),
    ("match_distance_m", "float8"),
    ("geom", "geometry"),
)
_AT: Final = {name: i for i, (name, _) in enumerate(_POINTS)}


def _copy_binary(
    conn: Connection,
    table: str,
    columns: Sequence[tuple[str, str]],
    rows: Sequence[tuple[Any, ...]],
) -> None:
    """Binary COPY of `rows` into `table`.

    In binary COPY each value travels in its column type's wire format, decoded by the server
    with that type's receive function; the client's types only pick how Python values are
    encoded. So a geometry (EWKB) or a jsonb (version byte 1, then the JSON text) already in
    wire format is declared `bytea` here and sent unchanged by psycopg's C bytea encoder.
    """
    raw = conn.connection.driver_connection
    assert raw is not None
    names = ", ".join(name for name, _ in columns)
    wire = ["bytea" if kind in ("geometry", "jsonb") else kind for _, kind in columns]
    with raw.cursor() as cur, cur.copy(f"COPY {table} ({names}) FROM STDIN (FORMAT BINARY)") as cp:
        cp.set_types(wire)
        write = cp.write_row
        for row in rows:
            write(row)


def stage_points(conn: Connection, prepared: Prepared) -> None:
    """The chunk's lookup keys into the transaction's (emptied) staging table."""
    conn.execute(_CREATE_STAGING)
    conn.execute(text("TRUNCATE upload_points"))
    _copy_binary(conn, "upload_points", _STAGING, prepared.staged)


_LOCK_CLASS_UPLOADER: Final = 0x4C95001


def lock_uploader(conn: Connection, meta: UploadMeta) -> None:
    """Serialise one uploader's uploads until commit (the CLI without a user counts as one).

    A phone that re-sends points in a new file while its first upload is still in flight is
    the race that would store a point twice: held from the first duplicate check to commit,
    this lock makes the second upload see the first one's points. (Two accounts sending one
    device's points at the same moment are not serialised.)
    """
    conn.execute(
        text("SELECT pg_advisory_xact_lock(:c, :k)"),
        {"c": _LOCK_CLASS_UPLOADER, "k": (meta.uploader_id or 0) & 0x7FFFFFFF},
    )


_SCALE: Final = f"{POSITION_SCALE:.0f}::float8"
_SAME_SPOT: Final = (
    f"round(ST_X(e.geom) * {_SCALE}) = round(s.lon * {_SCALE}) "
    f"AND round(ST_Y(e.geom) * {_SCALE}) = round(s.lat * {_SCALE})"
)


def _candidates_sql(layers: set[str]) -> str:
    """Every asset within tolerance + 2 x accuracy of each staged observation of its layer."""
    parts = [
        f"""
        SELECT s.ord, a.id, a.code, ST_Distance(a.geog, s.geog) AS d
        FROM (SELECT ord, accuracy_m, {_STAGED_POINT}::geography AS geog
              FROM upload_points s WHERE matched_layer = '{layer_id}') s
        JOIN "{STATUS_FIELDS[layer_id][0].table}" a
          ON ST_DWithin(a.geog, s.geog, :tol + 2 * LEAST(COALESCE(s.accuracy_m, 0), :max_acc))
        """  # noqa: S608 - identifiers from the catalog
        for layer_id in sorted(layers)
    ]
    empty = "SELECT NULL::int AS ord, NULL::bigint AS id, NULL::text AS code, NULL::float8 AS d"
    return " UNION ALL ".join(parts) if parts else f"{empty} WHERE false"


def _lookup_sql(layers: set[str]) -> str:
    # Only points that differ from their prepared row come back: the duplicates of earlier
    # uploads, points in a grid, observations with an asset within tolerance. Earlier
    # duplicates are found through the btree on field_points.observed_at (a point without a
    # time is never one) and decided by the whole key; no distance is involved. The grid rule
    # is civic_gis_grid_of's (migration 0002: the lowest id on a shared boundary), as a join:
    # calling the function per point plans one query per point.
    return f"""
    WITH earlier AS (
        SELECT DISTINCT ON (s.ord) s.ord, e.id, e.upload_id, e.row
        FROM upload_points s
        JOIN field_points e
          ON e.observed_at = s.observed_at
         AND e.upload_id <> :u
         AND e.device IS NOT DISTINCT FROM s.device
         AND e.kind IS NOT DISTINCT FROM s.kind
         AND {_SAME_SPOT}
        ORDER BY s.ord, e.id
    ),
    grid AS (
        SELECT DISTINCT ON (s.ord) s.ord, g.id
        FROM upload_points s
        JOIN grids g ON g.level = 'grid' AND ST_Intersects(g.geom, {_STAGED_POINT})
        ORDER BY s.ord, g.id
    ),
    cand AS ({_candidates_sql(layers)}),
    ranked AS (
        SELECT ord, id, code, d, row_number() OVER (PARTITION BY ord ORDER BY d, id) AS k
        FROM cand
    ),
    near AS (
        SELECT ord,
               min(id) FILTER (WHERE k = 1) AS id1, min(code) FILTER (WHERE k = 1) AS code1,
               min(d) FILTER (WHERE k = 1) AS d1, min(code) FILTER (WHERE k = 2) AS code2,
               min(d) FILTER (WHERE k = 2) AS d2
        FROM ranked WHERE k <= 2 GROUP BY ord
    ),
    snapped AS (
        SELECT n.*, s.accuracy_m AS acc,
            CASE
                WHEN n.d1 > :tol THEN NULL  -- no_asset, as prepared
                WHEN s.accuracy_m IS NULL OR s.accuracy_m > :max_acc THEN 'too_inaccurate'
                WHEN n.d2 IS NOT NULL AND n.d2 - n.d1 <= 2 * s.accuracy_m THEN 'ambiguous'
                ELSE 'matched'
            END AS snap
        FROM near n JOIN upload_points s ON s.ord = n.ord
    )
    SELECT s.ord, e.id AS earlier_point, e.upload_id AS earlier_upload, e.row AS earlier_row,
        grid.id AS grid_id, v.snap,
        CASE v.snap
            WHEN 'too_inaccurate' THEN
                CASE WHEN v.acc IS NULL THEN 'accuracy unknown (no hAcc, accuracy or HDOP)'
                ELSE format('accuracy %s m is worse than %s m',
                            round(v.acc::numeric, 1), CAST(:max_acc AS float8)) END
            WHEN 'ambiguous' THEN
                format('%s at %s m and %s at %s m are both possible at accuracy %s m',
                       v.code1, round(v.d1::numeric, 2), v.code2, round(v.d2::numeric, 2),
                       round(v.acc::numeric, 1))
        END AS reason,
        CASE WHEN v.snap = 'matched' THEN v.id1 END AS matched_id,
        CASE WHEN v.snap = 'matched' THEN v.code1 END AS matched_code,
        CASE WHEN v.snap = 'matched' THEN round(v.d1::numeric, 2)::float8 END AS distance_m
    FROM upload_points s
    LEFT JOIN earlier e ON e.ord = s.ord
    LEFT JOIN grid ON grid.ord = s.ord
    LEFT JOIN snapped v ON v.ord = s.ord AND v.snap IS NOT NULL
    WHERE e.ord IS NOT NULL OR grid.ord IS NOT NULL OR v.ord IS NOT NULL
    ORDER BY s.ord
    """  # noqa: S608 - identifiers from the catalog


def look_up(
    conn: Connection, upload_id: int, layers: set[str], rules: FieldRules
) -> list[Row[Any]]:
    """Earlier duplicates, grids and snap verdicts of the staged points (one statement).

    `layers` are the asset layers the chunk has status observations of. This upload's own
    rows (earlier chunks) are not duplicates: its in-file duplicates are gone already.
    """
    return list(
        conn.execute(
            text(_lookup_sql(layers)),
            {"u": upload_id, "tol": rules.snap_tolerance_m, "max_acc": rules.max_snap_accuracy_m},
        )
    )


def _resolve(
    prepared: Prepared, found: Sequence[Row[Any]]
) -> tuple[list[tuple[Any, ...]], list[int], list[dict[str, int]]]:
    """The rows to write (lookups applied, earlier duplicates left out), the index in the
    chunk of each, and the earlier duplicates for the report."""
    rows = list(prepared.rows)
    earlier: list[dict[str, int]] = []
    dropped: set[int] = set()
    for f in found:
        if f.earlier_point is not None:
            dropped.add(f.ord)
            earlier.append(
                {
                    "row": prepared.points[f.ord].row,
                    "duplicate_of_upload": int(f.earlier_upload),
                    "duplicate_of_row": int(f.earlier_row),
                    "duplicate_of_point": int(f.earlier_point),
                }
            )
            continue
        row = list(rows[f.ord])
        row[_AT["grid_id"]] = f.grid_id
        if f.snap is not None:
            row[_AT["snap"]] = f.snap
            row[_AT["snap_reason"]] = f.reason
            row[_AT["matched_id"]] = f.matched_id
            row[_AT["matched_code"]] = f.matched_code
            row[_AT["match_distance_m"]] = f.distance_m
        rows[f.ord] = tuple(row)
    kept = [i for i in range(len(rows)) if i not in dropped]
    return [rows[i] for i in kept] if dropped else rows, kept, earlier


def copy_points(
    conn: Connection,
    upload_id: int,
    prepared: Prepared,
    rows: list[tuple[Any, ...]],
    kept: list[int],
    ids: list[int],
) -> None:
    """Binary COPY of the chunk's final rows into field_points with their ids, in file
    order; photos first."""
    if any(prepared.points[i].photo is not None for i in kept):
        photo_ids = _store_photos(conn, upload_id, [prepared.points[i] for i in kept])
        at = _AT["photo_id"]
        rows = [(*r[:at], pid, *r[at + 1 :]) for r, pid in zip(rows, photo_ids, strict=True)]
    _copy_binary(
        conn,
        "field_points",
        (("id", "int8"), *_POINTS),
        [(i, *r) for i, r in zip(ids, rows, strict=True)],
    )


def _listing(snap: str, observation: Observation | None) -> str:
    """The report listing of a written point. Every observation that creates a record
    (illegal building, venue) is turned into one by `create_records`."""
    if observation is not None and observation.action == "create":
        return "created"
    return "unmatched" if snap in _UNMATCHED else snap


_LISTED: Final = (
    "row",
    "kind",
    "observation",
    "snap",
    "snap_reason",
    "matched_layer",
    "matched_id",
    "matched_code",
    "match_distance_m",
    "accuracy_m",
)


def _list(
    listings: dict[str, Listing],
    prepared: Prepared,
    rows: list[tuple[Any, ...]],
    kept: list[int],
    ids: list[int],
) -> None:
    """Count the written rows into their listings and keep each listing's first ones.

    Chunks are written in file order and ids are taken in that order, so the first rows
    met are the first by (row, id).
    """
    snap, observations = _AT["snap"], prepared.observations
    names = [_listing(r[snap], observations[i]) for r, i in zip(rows, kept, strict=True)]
    for name, count in Counter(names).items():
        listings.setdefault(name, Listing()).total += count
    open_ = {name for name, listing in listings.items() if len(listing.first) < REPORT_LIST_LIMIT}
    for name, point_id, row in zip(names, ids, rows, strict=True):
        if not open_:
            break
        if name in open_:
            first = listings[name].first
            first.append({"id": point_id, **{f: row[_AT[f]] for f in _LISTED}})
            if len(first) == REPORT_LIST_LIMIT:
                open_.discard(name)


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


def create_records(
    conn: Connection, upload_id: int, rules: FieldRules
) -> dict[int, tuple[int, str]]:
    """New illegal-building and venue records from the upload's observations.

    An illegal building is reported as a point; the record gets a provisional square
    footprint of `illegal_building_square_m` (4 m) centred on it, with
    properties.needs_survey = true, until someone surveys the real outline. Venues are
    points and go straight into `venues`, so `school-zones` sees them at once. Returns the
    record (id, code) made of each point.
    """
    made: dict[int, tuple[int, str]] = {}
    rows = conn.execute(
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
            UPDATE field_points f SET snap = 'created', snap_reason = NULL, matched_id = ins.id,
                matched_code = ins.code
            FROM ins WHERE f.id = ins.point_id
            RETURNING f.id, ins.id AS record_id, ins.code
            """  # noqa: S608 - identifiers from the catalog
        ),
        {"u": upload_id, "half": rules.illegal_building_square_m / 2},
    )
    made.update((int(r.id), (int(r.record_id), str(r.code))) for r in rows)
    rows = conn.execute(
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
            UPDATE field_points f SET snap = 'created', snap_reason = NULL, matched_id = ins.id,
                matched_code = ins.code
            FROM ins WHERE f.id = ins.point_id
            RETURNING f.id, ins.id AS record_id, ins.code
            """  # noqa: S608 - identifiers from the catalog
        ),
        {"u": upload_id},
    )
    made.update((int(r.id), (int(r.record_id), str(r.code))) for r in rows)
    return made


_UNMATCHED: Final = ("ambiguous", "too_inaccurate", "no_asset")


def build_report(
    conn: Connection,
    upload_id: int,
    meta: UploadMeta,
    parsed: ParsedUpload,
    stored: Stored,
    changes: list[dict[str, Any]],
    created: dict[int, tuple[int, str]],
) -> dict[str, Any]:
    """The upload report: what was accepted, refused, duplicated, matched, created, left.

    `changes` are the asset changes (`apply_statuses`), `created` the record made of each
    point (`create_records`).
    """
    created_at = conn.execute(
        text("SELECT created_at FROM uploads WHERE id = :u"), {"u": upload_id}
    ).scalar_one()
    applied = {c["point_id"]: c for c in changes}
    listed, empty = stored.listings, Listing()
    matched_list = listed.get("matched", empty)
    created_list = listed.get("created", empty)
    unmatched_list = listed.get("unmatched", empty)
    matched = []
    for r in matched_list.first:
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
    duplicates = sorted(stored.duplicates, key=lambda d: d["row"])
    return {
        "id": upload_id,
        "status": "partial" if parsed.refused else "stored",
        "filename": meta.filename,
        "format": parsed.format,
        "crs": parsed.crs,
        "sha256": meta.sha256,
        "uploader": meta.uploader_name,
        "created_at": created_at.isoformat(),
        "points_accepted": stored.points,
        "tracks_accepted": stored.tracks,
        "refused_count": len(parsed.refused),
        "refused": [problem_json(p) for p in parsed.refused],
        "warnings": [str(w) for w in parsed.warnings],
        "duplicates_count": len(duplicates),
        "duplicates": duplicates,
        "matched_count": matched_list.total,
        "matched": matched,
        "created_count": created_list.total,
        "created": [
            {
                "row": r["row"],
                "point_id": r["id"],
                "layer": r["matched_layer"],
                "id": created[r["id"]][0],
                "code": created[r["id"]][1],
            }
            for r in created_list.first
        ],
        "unmatched_count": unmatched_list.total,
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
            for r in unmatched_list.first
        ],
        "observations_without_asset_kind": listed.get("not_an_asset_kind", empty).total,
        "lists_truncated_at": REPORT_LIST_LIMIT,
    }


def save_report(conn: Connection, upload_id: int, report: dict[str, Any]) -> None:
    """Keep the report with the upload, so GET and every replay return it unchanged."""
    conn.execute(
        text("UPDATE uploads SET report = CAST(:r AS jsonb), status = :s WHERE id = :u"),
        {"u": upload_id, "r": orjson.dumps(report, default=str).decode(), "s": report["status"]},
    )


@dataclass
class Listing:
    """How many written points a report listing has, and the first REPORT_LIST_LIMIT of them."""

    total: int = 0
    first: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Stored:
    """What the chunks wrote so far: points, tracks, duplicates left out, layers touched."""

    points: int = 0
    tracks: int = 0
    duplicates: list[dict[str, int]] = field(default_factory=list)
    matched_layers: set[str] = field(default_factory=set)
    """Layers with at least one matched observation: the only ones whose assets change."""
    listings: dict[str, Listing] = field(default_factory=dict)
    """The report's listings (matched, created, unmatched, not_an_asset_kind), kept as the
    rows are written, in file order."""
    creates: bool = False


@dataclass(frozen=True)
class LookedUp:
    """A chunk's lookups (`look_up`) and an id for each of its points."""

    found: list[Row[Any]]
    ids: list[int]


_POINT_IDS: Final = text(
    # The sequence is looked up once (an InitPlan), not once per id: 0.07 s vs 0.68 s per
    # 100,000 ids. One array, not a row per id: SQLAlchemy rows cost the client 1-2 us each.
    "SELECT array_agg(nextval((SELECT pg_get_serial_sequence('field_points', 'id')::regclass)) "
    "ORDER BY i) FROM generate_series(1, :n) i"
)


def look_up_chunk(
    conn: Connection, upload_id: int, prepared: Prepared, rules: FieldRules
) -> LookedUp:
    """Stage a chunk and look it up: earlier duplicates, grids, snap verdicts (`look_up`);
    and take the ids its points will have (a point found to be an earlier duplicate leaves a
    gap), so that the report can list points without reading them back.

    It writes only a temporary table, so it may run on a second connection while the
    upload's own transaction writes the chunk before (gis_api.uploads does): it reads
    committed data, as the upload's READ COMMITTED statements do, and the upload's own
    uncommitted rows are never duplicates anyway. Sequences are not transactional.
    """
    layers = {o.layer.id for o in prepared.observations if o is not None and o.action == "status"}
    stage_points(conn, prepared)
    found = look_up(conn, upload_id, layers, rules)
    ids = conn.execute(_POINT_IDS, {"n": len(prepared.rows)}).scalar_one() or []
    return LookedUp(found, list(ids))


def write_chunk(
    conn: Connection,
    upload_id: int,
    prepared: Prepared,
    looked_up: LookedUp,
    tracks: Sequence[FieldTrack],
    stored: Stored,
) -> None:
    """Write one chunk with its lookups applied (earlier duplicates left out); add to `stored`.

    `conn` is the upload's transaction, which holds `lock_uploader` from before the first
    chunk until commit.
    """
    rows, kept, earlier = _resolve(prepared, looked_up.found)
    ids = [looked_up.ids[i] for i in kept]
    copy_points(conn, upload_id, prepared, rows, kept, ids)
    _list(stored.listings, prepared, rows, kept, ids)
    stored.points += len(rows)
    stored.tracks += copy_tracks(conn, upload_id, tracks)
    stored.duplicates += prepared.duplicates + earlier
    snap, layer = _AT["snap"], _AT["matched_layer"]
    stored.matched_layers |= {r[layer] for r in rows if r[snap] == "matched"}
    stored.creates = stored.creates or any(
        o is not None and o.action == "create" for o in prepared.observations
    )


def finish_upload(
    conn: Connection,
    upload_id: int,
    meta: UploadMeta,
    parsed: ParsedUpload,
    stored: Stored,
    rules: FieldRules,
    authorize_assets: Authorize,
) -> dict[str, Any]:
    """After the last chunk: change the matched assets, create records, store the report.

    `parsed` carries the whole file's format, CRS, refusals and warnings (points not needed).
    """
    layers = stored.matched_layers
    authorize_assets(conn, matched_asset_wkbs(conn, upload_id, layers))
    changes = apply_statuses(conn, upload_id, layers)
    created = create_records(conn, upload_id, rules) if stored.creates else {}
    report = build_report(conn, upload_id, meta, parsed, stored, changes, created)
    save_report(conn, upload_id, report)
    return report
