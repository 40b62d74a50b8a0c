"""One field upload, start to finish: the path shared by `POST /uploads` and `civic-gis upload`.

Order matters for the guarantees of issue 5:
1. a stored upload with the same content hash or Idempotency-Key answers at once (replay);
2. the file is read in chunks (`stream_field_file`). A file that cannot be read at all fails
   at the first chunk, and a first chunk with refused points (without partial=true) has the
   rest read to list every refusal: both answer 4xx before any transaction, so a bad small
   file never holds a lock;
3. one transaction claims the upload row (unique hash/key: a concurrent twin waits here and
   then finds the first one's report), takes the uploader's lock (see
   layers.field_store.lock_uploader), and writes chunk k on a worker thread while another
   looks chunk k+1 up on a second connection (which writes only a temporary table) and
   chunk k+2 is read: writing field_points costs as much as reading the file, and
   overlapping the three is most of what makes a 100,000-point upload fast. Grid rights
   are checked per chunk. A refused point in a later chunk stops the writing; the rest is
   read to list every refusal and everything rolls back (422). Then the matched assets
   change and the report is stored. Any error rolls all of it back.
"""

from __future__ import annotations

import sys
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy import Connection, Engine, text

from data.field import GC_PAUSE, InvalidUpload, ParsedUpload, combine, stream_field_file
from data.shared_setting import SharedSetting
from gis_api.auth import Principal, audit_context, audit_source, check_in_grids
from gis_api.problems import ApiProblem
from layers.field_store import (
    Existing,
    LookedUp,
    Prepared,
    Preparer,
    Stored,
    UploadMeta,
    claim_upload,
    find_existing,
    finish_upload,
    lock_uploader,
    look_up_chunk,
    point_wkbs,
    problem_json,
    track_wkbs,
    write_chunk,
)
from layers.profile import FieldRules, RuleProfile

Progress = Callable[[str], None]

GIL_SWITCH_INTERVAL_S: Final = 0.0005
"""The GIL switch interval while chunks are stored (Python's default: 5 ms).

The storing thread mostly waits on PostgreSQL and needs the GIL back only briefly, to encode
the next rows of its COPY, while the reading thread computes; by default it waits up to
5 ms for every such turn, which left PostgreSQL idle for a fifth of a 100,000-point upload
(measured: 4.1-4.5 s at 5 ms vs 3.6-3.7 s at 0.5 ms; 0.1-2 ms were no better).
"""


def _quicken_gil() -> float:
    previous = sys.getswitchinterval()
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
    return previous


_QUICK_GIL: Final = SharedSetting(_quicken_gil, sys.setswitchinterval)

_QUEUED_WRITES: Final = 2
"""Chunks read, prepared and looked up ahead of the one being written: with 1 the reading
thread waited for each write before reading on, and the writer for the reader (measured)."""


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


class _Reading:
    """The file's chunks as the upload takes them, keeping every refusal and warning."""

    def __init__(self, chunks: Iterator[ParsedUpload], meta: UploadMeta) -> None:
        self._chunks = chunks
        self._meta = meta
        self._headers: list[ParsedUpload] = []

    def next(self) -> ParsedUpload | None:
        """The next chunk, None after the last; a 4xx problem for a file that cannot be read."""
        try:
            chunk = next(self._chunks)
        except StopIteration:
            return None
        except InvalidUpload as exc:
            raise ApiProblem(
                _fatal_status(exc.reason),
                f"{self._meta.filename or 'upload'}: {exc.reason}; nothing written",
                problems=[problem_json(p) for p in exc.problems],
            ) from exc
        self._headers.append(
            ParsedUpload(chunk.format, chunk.crs, [], [], chunk.refused, chunk.warnings)
        )
        return chunk

    def drain(self) -> None:
        """Read the rest, for its refusals and warnings."""
        while self.next() is not None:
            pass

    def header(self) -> ParsedUpload:
        """Format, CRS, refusals and warnings of the chunks read (no points)."""
        return combine(self._headers)

    def refused_problem(self) -> ApiProblem:
        """422 listing every refused point (call after `drain`)."""
        refused = self.header().refused
        name = self._meta.filename or "upload"
        return ApiProblem(
            422,
            f"{name}: {len(refused)} point(s) refused, nothing written "
            f"(first: {refused[0]}); send partial=true to store the others",
            refused=[problem_json(p) for p in refused],
        )


@dataclass(frozen=True)
class _Target:
    """Where and as whom the chunks are written."""

    conn: Connection
    """The upload's transaction: every write."""
    lookups: Connection
    """A second connection: stages and looks up chunk k+1 while `conn` writes chunk k."""
    upload_id: int
    meta: UploadMeta
    principal: Principal | None
    rules: FieldRules


def _look_up(target: _Target, prepared: Prepared) -> LookedUp:
    """One chunk's lookups, on the lookup worker thread and connection."""
    return look_up_chunk(target.lookups, target.upload_id, prepared, target.rules)


def _write(
    target: _Target,
    chunk: ParsedUpload,
    prepared: Prepared,
    found: Future[LookedUp],
    stored: Stored,
) -> None:
    """One chunk, on the writing thread: grid rights, then its lookups applied and written."""
    principal = target.principal
    if principal is not None and principal.grid_scoped:
        check_in_grids(
            target.conn, principal, point_wkbs(prepared.points) + track_wkbs(chunk.tracks)
        )
    write_chunk(target.conn, target.upload_id, prepared, found.result(), chunk.tracks, stored)


def _store_chunks(target: _Target, reading: _Reading, first: ParsedUpload, partial: bool) -> Stored:
    """A pipeline of three threads: this one reads and prepares chunks while a worker looks
    them up on the lookup connection and another writes them, in file order.

    Each connection is used by one thread only. At most `_QUEUED_WRITES` chunks wait for
    their write (a bounded amount of memory); leaving waits for the last one, and a failed
    lookup or write is raised here, in file order, with the writes queued after it
    cancelled. Stops writing at the first refused point unless `partial` (the caller then
    refuses the upload).
    """
    stored = Stored()
    preparer = Preparer(target.meta, target.upload_id, target.rules)
    queued: deque[Future[None]] = deque()
    with (
        GC_PAUSE,
        _QUICK_GIL,
        ThreadPoolExecutor(1, thread_name_prefix="upload-lookup") as looker,
        ThreadPoolExecutor(1, thread_name_prefix="upload-store") as writer,
    ):
        try:
            chunk: ParsedUpload | None = first
            while chunk is not None:
                if chunk.refused and not partial:
                    reading.drain()
                    break
                if chunk.points or chunk.tracks:
                    prepared = preparer.prepare(chunk)
                    found = looker.submit(_look_up, target, prepared)
                    while len(queued) >= _QUEUED_WRITES:
                        queued.popleft().result()
                    queued.append(writer.submit(_write, target, chunk, prepared, found, stored))
                chunk = reading.next()
            while queued:
                queued.popleft().result()
        except BaseException:
            for write in queued:
                write.cancel()
            raise
    return stored


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
    rules = profile.field
    chunks = stream_field_file(
        raw,
        meta.filename,
        meta.declared_crs,
        profile,
        now,
        jurisdiction_bbox=bbox,
        outside_jurisdiction=rules.outside_jurisdiction,
        max_bytes=rules.max_upload_bytes,
    )
    with closing(chunks):
        reading = _Reading(chunks, meta)
        first = reading.next()
        assert first is not None  # a stream yields at least one chunk or raises
        if first.refused and not partial:
            reading.drain()
            raise reading.refused_problem()
        if principal is not None and not principal.can_write:
            raise ApiProblem(403, f"{principal.name} is a {principal.role}: leaders cannot write")
        progress("store")
        with engine.begin() as conn, engine.connect() as lookups:
            upload_id = claim_upload(conn, meta, first.format)
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
            else:
                audit_source(conn, source)
            lock_uploader(conn, meta)
            target = _Target(conn, lookups, upload_id, meta, principal, rules)
            stored = _store_chunks(target, reading, first, partial)
            header = reading.header()
            if header.refused and not partial:
                raise reading.refused_problem()

            def authorize(c: Connection, wkbs: Sequence[bytes]) -> None:
                if principal is not None and wkbs:
                    check_in_grids(c, principal, wkbs)

            report = finish_upload(conn, upload_id, meta, header, stored, rules, authorize)
    progress("done")
    return UploadOutcome(report, replayed=False)


def get_report(engine: Engine, upload_id: int) -> dict[str, Any] | None:
    """The stored report of an upload, or None."""
    with engine.connect() as conn:
        row = conn.execute(
            text("SELECT report FROM uploads WHERE id = :u"), {"u": upload_id}
        ).first()
    return None if row is None else dict(row[0])
