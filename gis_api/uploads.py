"""One field upload, start to finish: the path shared by `POST /uploads` and `civic-gis upload`.

Order matters for the guarantees of issue 5:
1. a stored upload with the same content hash or Idempotency-Key answers at once (replay);
2. the file is parsed outside any transaction (fatal → 4xx; refused points → 422 unless
   partial), so a bad file never holds a lock;
3. one transaction claims the upload row (unique hash/key: a concurrent twin waits here and
   then finds the first one's report), checks grid rights, COPYs points, snaps, updates the
   assets under the writer's name and stores the report. Any error rolls all of it back.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, text

from data.field import InvalidUpload, ParsedUpload, read_field_file
from gis_api.auth import Principal, audit_context, audit_source, check_in_grids
from gis_api.problems import ApiProblem
from layers.field_store import (
    Existing,
    UploadMeta,
    claim_upload,
    find_existing,
    point_wkbs,
    prepare,
    problem_json,
    store_parsed,
    track_wkbs,
)
from layers.profile import RuleProfile

Progress = Callable[[str], None]


@dataclass(frozen=True)
class UploadOutcome:
    """The report, and whether it is an earlier upload's (nothing new written)."""

    report: dict[str, Any]
    replayed: bool


def _noop(_: str) -> None:
    return None


def _fatal_status(reason: str) -> int:
    """413 for size, 415 for a file that is not any accepted format, else 400."""
    if "over the upload limit" in reason or "expands past" in reason:
        return 413
    if reason.startswith(("unknown format", "named .", "not a JPEG image")) or (
        "images are not read" in reason or "is neither GPX" in reason
    ):
        return 415
    return 400


def jurisdiction(conn: Connection) -> tuple[float, float, float, float] | None:
    """The grids' extent (WGS-84): points outside it are outside the city's jurisdiction."""
    row = conn.execute(
        text(
            "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) "
            "FROM (SELECT ST_Extent(geom) AS e FROM grids) x"
        )
    ).one()
    if row[0] is None or row[0] == row[2] or row[1] == row[3]:
        return None
    return (float(row[0]), float(row[1]), float(row[2]), float(row[3]))


def _replay(found: Sequence[Existing], sha256: str, key: str | None) -> UploadOutcome | None:
    if not found:
        return None
    by_key = next((e for e in found if key is not None and e.idempotency_key == key), None)
    if by_key is not None and by_key.sha256 != sha256:
        raise ApiProblem(
            409,
            f"Idempotency-Key {key!r} was used for upload {by_key.id}, a different file: "
            "use a new key for a new file",
            upload=by_key.id,
        )
    return UploadOutcome(found[0].report, replayed=True)


def parse(
    raw: bytes,
    meta: UploadMeta,
    profile: RuleProfile,
    bbox: tuple[float, float, float, float] | None,
    now: datetime,
    partial: bool,
) -> ParsedUpload:
    """Read the file; 4xx problems for a fatal error or, unless `partial`, any refused point."""
    try:
        parsed = read_field_file(
            raw,
            meta.filename,
            meta.declared_crs,
            profile,
            now,
            jurisdiction_bbox=bbox,
            outside_jurisdiction=profile.field.outside_jurisdiction,
            max_bytes=profile.field.max_upload_bytes,
        )
    except InvalidUpload as exc:
        raise ApiProblem(
            _fatal_status(exc.reason),
            f"{meta.filename or 'upload'}: {exc.reason}; nothing written",
            problems=[problem_json(p) for p in exc.problems],
        ) from exc
    if parsed.refused and not partial:
        count = len(parsed.refused)
        raise ApiProblem(
            422,
            f"{meta.filename or 'upload'}: {count} point(s) refused, nothing written "
            f"(first: {parsed.refused[0]}); send partial=true to store the others",
            refused=[problem_json(p) for p in parsed.refused],
        )
    return parsed


def run_upload(
    engine: Engine,
    raw: bytes,
    meta: UploadMeta,
    principal: Principal | None,
    profile: RuleProfile,
    *,
    partial: bool = False,
    audit: str = "http",
    now: datetime | None = None,
    progress: Progress = _noop,
) -> UploadOutcome:
    """Store one upload, or return the stored report of the same file/key.

    `principal` None is only for the CLI without --user: the audit then names the source
    alone. `audit` is the request or command that made the upload, recorded with its id.
    """
    now = now or datetime.now(UTC)
    with engine.connect() as conn:
        replay = _replay(
            find_existing(conn, meta.sha256, meta.idempotency_key),
            meta.sha256,
            meta.idempotency_key,
        )
        if replay is not None:
            return replay
        bbox = jurisdiction(conn)
    progress("parse")
    parsed = parse(raw, meta, profile, bbox, now, partial)
    prepared = prepare(parsed, meta)
    if principal is not None and not principal.can_write:
        raise ApiProblem(403, f"{principal.name} is a {principal.role}: leaders cannot write")
    progress("store")
    with engine.begin() as conn:
        upload_id = claim_upload(conn, meta, parsed)
        if upload_id is None:
            # Read committed: this statement sees the twin that made the INSERT do nothing.
            found = find_existing(conn, meta.sha256, meta.idempotency_key)
            replay = _replay(found, meta.sha256, meta.idempotency_key)
            if replay is None:  # pragma: no cover - the conflicting row is committed by now
                raise ApiProblem(409, "a concurrent upload of this file did not finish; retry")
            return replay
        source = f"upload:{upload_id} {audit}"
        if principal is not None:
            audit_context(conn, principal, source)
            if principal.grid_scoped:
                check_in_grids(
                    conn, principal, point_wkbs(prepared.points) + track_wkbs(parsed.tracks)
                )
        else:
            audit_source(conn, source)
        writer = principal

        def authorize(c: Connection, wkbs: Sequence[bytes]) -> None:
            if writer is not None and wkbs:
                check_in_grids(c, writer, wkbs)

        report = store_parsed(conn, upload_id, meta, parsed, prepared, profile.field, authorize)
    progress("done")
    return UploadOutcome(report, replayed=False)


def get_report(engine: Engine, upload_id: int) -> dict[str, Any] | None:
    """The stored report of an upload, or None."""
    with engine.connect() as conn:
        row = conn.execute(
            text("SELECT report FROM uploads WHERE id = :u"), {"u": upload_id}
        ).first()
    return None if row is None else dict(row[0])
