"""field_points' references without foreign keys (migration 0009): statement triggers keep
upload_id -> uploads (ON DELETE CASCADE) and photo_id -> field_photos (ON DELETE SET NULL)
as the foreign keys did, and an earlier upload's point is still a duplicate exactly at the
edges of its key."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import psycopg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import IntegrityError

from layers.field_store import _POINTS, _copy_binary, point_ewkbs
from tests.access import Accounts
from tests.uploads.helpers import clear_uploads, post

pytestmark = pytest.mark.usefixtures("empty_uploads")


@pytest.fixture
def empty_uploads(engine: Engine) -> Iterator[None]:
    clear_uploads(engine)
    yield
    clear_uploads(engine)


def _upload(conn: Connection, sha: str) -> int:
    return int(
        conn.execute(
            text(
                "INSERT INTO uploads (sha256, source, format, bytes, status, report) "
                "VALUES (:sha, 'cli', 'gpx', 1, 'stored', '{}') RETURNING id"
            ),
            {"sha": sha},
        ).scalar_one()
    )


def _photo(conn: Connection, upload_id: int) -> int:
    return int(
        conn.execute(
            text(
                "INSERT INTO field_photos (upload_id, sha256, content) "
                "VALUES (:u, 'p', '\\xffd8'::bytea) RETURNING id"
            ),
            {"u": upload_id},
        ).scalar_one()
    )


_INSERT = text(
    """
    INSERT INTO field_points (upload_id, row, orig_x, orig_y, crs, snap, photo_id, geom)
    SELECT u, g, 129.6, 44.58, 'EPSG:4326', 'not_an_asset_kind', p,
           ST_SetSRID(ST_MakePoint(129.6, 44.58), 4326)
    FROM unnest(CAST(:uploads AS bigint[]), CAST(:photos AS bigint[])) WITH ORDINALITY x(u, p, g)
    """
)


def _insert(conn: Connection, uploads: list[int], photos: list[int | None] | None = None) -> None:
    conn.execute(_INSERT, {"uploads": uploads, "photos": photos or [None] * len(uploads)})


def _points(engine: Engine) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        return [
            tuple(r)
            for r in conn.execute(
                text(
                    "SELECT upload_id, row, photo_id FROM field_points "
                    "ORDER BY upload_id, row, photo_id"
                )
            )
        ]


def _copy_row(upload_id: int, photo_id: int | None = None) -> tuple[Any, ...]:
    """A field_points row as the upload's binary COPY writes it."""
    values: dict[str, Any] = dict.fromkeys((name for name, _ in _POINTS), None)
    values.update(
        upload_id=upload_id,
        row=1,
        orig_x=129.6,
        orig_y=44.58,
        crs="EPSG:4326",
        properties=b"\x01{}",
        snap="no_asset",
        photo_id=photo_id,
        geom=point_ewkbs(np.array([129.6]), np.array([44.58]))[0],
    )
    return tuple(values[name] for name, _ in _POINTS)


def test_a_point_of_a_missing_upload_is_refused_and_its_statement_writes_nothing(
    engine: Engine,
) -> None:
    with engine.begin() as conn:
        good = _upload(conn, "a")
    with pytest.raises(IntegrityError) as caught, engine.begin() as conn:
        _insert(conn, [good, good, good + 1000, good])
    assert isinstance(caught.value.orig, psycopg.errors.ForeignKeyViolation)
    assert caught.value.orig.diag.constraint_name == "fk_field_points_upload_id"
    assert f"Key (upload_id)=({good + 1000}) is not present" in str(caught.value)
    assert _points(engine) == []


def test_binary_copy_of_a_bad_reference_is_refused_and_writes_nothing(engine: Engine) -> None:
    with engine.begin() as conn:
        good = _upload(conn, "a")
        photo = _photo(conn, good)
    for rows, constraint in (
        ([_copy_row(good), _copy_row(good + 7)], "fk_field_points_upload_id"),
        ([_copy_row(good, photo), _copy_row(good, photo + 7)], "fk_field_points_photo_id"),
    ):
        with pytest.raises(psycopg.errors.ForeignKeyViolation) as caught, engine.begin() as conn:
            _copy_binary(conn, "field_points", _POINTS, rows)
        assert caught.value.diag.constraint_name == constraint
        assert _points(engine) == []
    with engine.begin() as conn:  # good references go in
        _copy_binary(conn, "field_points", _POINTS, [_copy_row(good), _copy_row(good, photo)])
    assert _points(engine) == [(good, 1, photo), (good, 1, None)]


def test_a_missing_photo_is_refused_and_null_photos_are_not_checked(engine: Engine) -> None:
    with engine.begin() as conn:
        upload = _upload(conn, "a")
        photo = _photo(conn, upload)
    with pytest.raises(IntegrityError) as caught, engine.begin() as conn:
        _insert(conn, [upload, upload], [photo, photo + 1])
    assert caught.value.orig.diag.constraint_name == "fk_field_points_photo_id"  # type: ignore[union-attr]
    assert _points(engine) == []
    with engine.begin() as conn:
        _insert(conn, [upload, upload], [photo, None])
    assert _points(engine) == [(upload, 1, photo), (upload, 2, None)]


def test_updates_check_only_references_that_change(engine: Engine) -> None:
    with engine.begin() as conn:
        upload = _upload(conn, "a")
        other = _upload(conn, "b")
        _insert(conn, [upload, upload])
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(text("UPDATE field_points SET upload_id = :u"), {"u": other + 50})
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(text("UPDATE field_points SET photo_id = 12345 WHERE row = 2"))
    with engine.begin() as conn:
        conn.execute(text("UPDATE field_points SET upload_id = :u WHERE row = 2"), {"u": other})
        conn.execute(text("UPDATE field_points SET snap = 'no_asset'"))
    assert _points(engine) == [(upload, 1, None), (other, 2, None)]


def test_deleting_an_upload_deletes_its_points_and_a_photo_leaves_a_null(engine: Engine) -> None:
    with engine.begin() as conn:
        gone = _upload(conn, "a")
        kept = _upload(conn, "b")
        gone_photo = _photo(conn, gone)
        kept_photo = _photo(conn, kept)
        _insert(conn, [gone, gone, kept, kept], [gone_photo, None, kept_photo, kept_photo])
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM field_photos WHERE id = :p"), {"p": kept_photo})
    assert _points(engine) == [
        (gone, 1, gone_photo),
        (gone, 2, None),
        (kept, 3, None),
        (kept, 4, None),
    ]
    with engine.begin() as conn:  # its photos go by their own foreign key, its points by 0009
        conn.execute(text("DELETE FROM uploads WHERE id = :u"), {"u": gone})
    assert _points(engine) == [(kept, 3, None), (kept, 4, None)]


def test_a_referenced_id_cannot_change_or_be_truncated_away(engine: Engine) -> None:
    with engine.begin() as conn:
        upload = _upload(conn, "a")
        holder = _upload(conn, "b")  # the photo's upload, so its own foreign key stays out
        photo = _photo(conn, holder)
        _insert(conn, [upload], [photo])
    for statement, constraint in (
        (f"UPDATE uploads SET id = id + 100 WHERE id = {upload}", "fk_field_points_upload_id"),
        ("UPDATE field_photos SET id = id + 100", "fk_field_points_photo_id"),
        ("TRUNCATE field_photos", "fk_field_points_photo_id"),
        ("TRUNCATE uploads CASCADE", "fk_field_points_"),  # cascades to photos, not points
    ):
        with pytest.raises(IntegrityError) as caught, engine.begin() as conn:
            conn.execute(text(statement))
        name = caught.value.orig.diag.constraint_name  # type: ignore[union-attr]
        assert name is not None and name.startswith(constraint), statement
    assert _points(engine) == [(upload, 1, photo)]
    with engine.begin() as conn:  # an unreferenced id may change; all tables at once truncate
        other = _upload(conn, "c")
        conn.execute(text("UPDATE uploads SET id = id + 100 WHERE id = :u"), {"u": other})
        conn.execute(text("TRUNCATE uploads, field_points, field_tracks, field_photos"))
    assert _points(engine) == []


def test_a_delete_racing_a_write_leaves_no_orphan(engine: Engine) -> None:
    """The written upload is locked FOR KEY SHARE, as the foreign key did: a delete waits
    for the writer and then deletes its rows; a writer after an uncommitted delete waits for
    it and then fails."""
    with engine.begin() as conn:
        first = _upload(conn, "a")
        second = _upload(conn, "b")

    def delete_later(upload_id: int, done: threading.Event) -> None:
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM uploads WHERE id = :u"), {"u": upload_id})
        done.set()

    deleted = threading.Event()
    with engine.begin() as writer:
        _insert(writer, [first, first])
        deleter = threading.Thread(target=delete_later, args=(first, deleted))
        deleter.start()
        time.sleep(0.5)
        assert not deleted.is_set()  # waits for the writer's lock
    deleter.join(10)
    assert deleted.is_set()
    assert _points(engine) == []

    with engine.connect() as deleting:
        deleting.execute(text("DELETE FROM uploads WHERE id = :u"), {"u": second})
        outcome: list[BaseException | None] = []

        def write() -> None:
            try:
                with engine.begin() as conn:
                    _insert(conn, [second])
                outcome.append(None)
            except IntegrityError as exc:
                outcome.append(exc)

        writer_thread = threading.Thread(target=write)
        writer_thread.start()
        time.sleep(0.5)
        assert outcome == []  # waits for the deleter
        deleting.commit()
    writer_thread.join(10)
    assert len(outcome) == 1 and isinstance(outcome[0], IntegrityError)
    assert _points(engine) == []


def _gpx_at(lon: str, lat: str, when: str = "2026-11-26T09:00:00Z") -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<gpx version="1.1" creator="t" '
        'xmlns="http://www.topografix.com/GPX/1/1">'
        f'<wpt lat="{lat}" lon="{lon}"><time>{when}</time><src>Mate 60</src>'
        "<type>lamp_unlit</type><hdop>1.0</hdop></wpt></gpx>\n"
    ).encode()


def test_earlier_duplicates_are_exact_at_the_edges_of_the_key(
    engine: Engine, client: TestClient, accounts: Accounts
) -> None:
    """Positions are one point when they round to the same 1e-7 degree (half to even), in
    any upload; a hair across the rounding edge, or a second later, is another point."""
    lon, lat = "129.6021000", "44.5808000"
    first = post(client, accounts.inspector, _gpx_at(lon, lat), "first.gpx")
    assert first.status_code == 201, first.text
    cases = [
        ((lon, lat), 1),
        (("129.602100049", lat), 1),  # 0.49 of a key unit: the same key
        (("129.602100049", "44.580799951"), 1),
        (("129.602100051", lat), 0),  # 0.51: the next key
        ((lon, "44.580799949"), 0),
        (("129.6021001", "44.5808001"), 0),  # 1 cm off: another point
    ]
    for n, ((x, y), duplicates) in enumerate(cases):
        raw = _gpx_at(x, y) + f"<!-- {n} -->".encode()
        response = post(client, accounts.inspector, raw, f"again{n}.gpx")
        assert response.status_code == 201, response.text
        report = response.json()
        assert report["duplicates_count"] == duplicates, (x, y, report["duplicates"])
        if duplicates:
            assert report["duplicates"][0]["duplicate_of_upload"] == first.json()["id"]
        else:
            with engine.begin() as conn:  # keep only the first upload for the next case
                conn.execute(text("DELETE FROM uploads WHERE id = :u"), {"u": report["id"]})
    later = post(client, accounts.inspector, _gpx_at(lon, lat, "2026-11-26T09:00:01Z"), "l.gpx")
    assert later.status_code == 201 and later.json()["duplicates_count"] == 0
