"""Field points: cheaper to write, same integrity

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02

Writing 100,000 points of one upload cost PostgreSQL about 3.4 s of CPU, of which the rows
themselves (heap, primary key, upload_id btree, generated geog) took 0.9 s. The rest, and
what replaces it (server CPU for 100,000 rows in ten binary COPYs, measured rolled back):

- the geography GiST `ix_field_points_geog` (+1.3 s, maintained row by row). Its only
  reader was the earlier-upload duplicate test, which is an equality on observed time,
  device, kind and position to 1e-7 degree: the spatial probe was only a pre-filter. A
  btree on `observed_at` (+0.2 s) finds the same candidates (a point without a time is
  never compared across uploads) and the key decides, exactly as before. A 2D geometry
  GiST on `geom` was measured too: +1.15 s, hardly cheaper than the geography one, and
  nothing reads field points by place (maps and checks read the asset layers; patrol
  coverage reads field_tracks), so no spatial index is kept.
- `ix_field_points_matched` (matched_layer, matched_id): read by no query (the per-upload
  statements go through upload_id).
- the foreign keys upload_id -> uploads and photo_id -> field_photos, whose RI triggers run
  a query per inserted row (+0.9 s and +0.15 s, the latter even for NULL). They become
  statement-level triggers with transition tables (+0.2 s for both) that keep the same
  guarantees, set-based, once per statement:
  * insert or update of field_points: every referenced upload and photo must exist; they
    are locked FOR KEY SHARE, as RI does, so a concurrent delete waits for this
    transaction (and then deletes its rows) or, if it deleted first, this one fails.
    An update checks only rows whose reference changed (as RI does), so setting photo_id
    to NULL never checks the upload;
  * delete from uploads deletes their points (ON DELETE CASCADE); delete from
    field_photos sets photo_id NULL (ON DELETE SET NULL); changing a referenced id, or
    truncating a referenced table while points refer to it, is refused (NO ACTION).
  Errors are SQLSTATE 23503 (foreign_key_violation) naming the old constraints, so
  callers see the same IntegrityError.
  A partial index on photo_id (only rows with a photo, so free for the others) serves the
  delete side, which the old FK did by scanning field_points once per deleted photo.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

FUNCTIONS = r"""
-- The references of field_points rows `ids` (upload_id, or photo_id when not NULL) must
-- exist: lock them FOR KEY SHARE, as the RI triggers do, and fail like a foreign key.
CREATE FUNCTION civic_gis_field_points_refs_exist(uploads_ bigint[], photos_ bigint[])
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    locked bigint;
    missing bigint;
BEGIN
    IF cardinality(uploads_) > 0 THEN
        PERFORM 1 FROM uploads u WHERE u.id = ANY (uploads_) ORDER BY u.id FOR KEY SHARE;
        GET DIAGNOSTICS locked = ROW_COUNT;
        IF locked < cardinality(uploads_) THEN
            SELECT x INTO missing FROM unnest(uploads_) x
            WHERE NOT EXISTS (SELECT 1 FROM uploads u WHERE u.id = x) ORDER BY x LIMIT 1;
            RAISE EXCEPTION 'insert or update on table "field_points" violates foreign key '
                'constraint "fk_field_points_upload_id"'
                USING ERRCODE = 'foreign_key_violation',
                      DETAIL = format('Key (upload_id)=(%s) is not present in table "uploads".',
                                      missing),
                      CONSTRAINT = 'fk_field_points_upload_id', TABLE = 'field_points';
        END IF;
    END IF;
    IF cardinality(photos_) > 0 THEN
        PERFORM 1 FROM field_photos f WHERE f.id = ANY (photos_) ORDER BY f.id FOR KEY SHARE;
        GET DIAGNOSTICS locked = ROW_COUNT;
        IF locked < cardinality(photos_) THEN
            SELECT x INTO missing FROM unnest(photos_) x
            WHERE NOT EXISTS (SELECT 1 FROM field_photos f WHERE f.id = x) ORDER BY x LIMIT 1;
            RAISE EXCEPTION 'insert or update on table "field_points" violates foreign key '
                'constraint "fk_field_points_photo_id"'
                USING ERRCODE = 'foreign_key_violation',
                      DETAIL = format('Key (photo_id)=(%s) is not present in table '
                                      '"field_photos".', missing),
                      CONSTRAINT = 'fk_field_points_photo_id', TABLE = 'field_points';
        END IF;
    END IF;
END $$;

-- After each INSERT or UPDATE statement on field_points: the distinct references it wrote.
CREATE FUNCTION civic_gis_field_points_refs() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    uploads_ bigint[];
    photos_ bigint[];
BEGIN
    IF TG_OP = 'INSERT' THEN
        SELECT array_agg(DISTINCT n.upload_id),
               array_agg(DISTINCT n.photo_id) FILTER (WHERE n.photo_id IS NOT NULL)
        INTO uploads_, photos_ FROM civic_gis_new n;
    ELSE  -- only references that changed, as RI checks them
        SELECT array_agg(DISTINCT n.upload_id) FILTER (WHERE o.upload_id IS DISTINCT FROM n.upload_id),
               array_agg(DISTINCT n.photo_id)
                   FILTER (WHERE n.photo_id IS NOT NULL AND o.photo_id IS DISTINCT FROM n.photo_id)
        INTO uploads_, photos_
        FROM civic_gis_new n LEFT JOIN civic_gis_old o ON o.id = n.id;
    END IF;
    PERFORM civic_gis_field_points_refs_exist(uploads_, photos_);
    RETURN NULL;
END $$;

-- After each DELETE, UPDATE or TRUNCATE of uploads or field_photos: the referencing side.
CREATE FUNCTION civic_gis_field_points_referenced() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    col text := CASE TG_TABLE_NAME WHEN 'uploads' THEN 'upload_id' ELSE 'photo_id' END;
    fk text := CASE TG_TABLE_NAME WHEN 'uploads' THEN 'fk_field_points_upload_id'
               ELSE 'fk_field_points_photo_id' END;
    gone bigint;
BEGIN
    IF TG_OP = 'DELETE' AND TG_TABLE_NAME = 'uploads' THEN  -- ON DELETE CASCADE
        DELETE FROM field_points p USING civic_gis_old o WHERE p.upload_id = o.id;
        RETURN NULL;
    ELSIF TG_OP = 'DELETE' THEN  -- ON DELETE SET NULL
        UPDATE field_points p SET photo_id = NULL FROM civic_gis_old o WHERE p.photo_id = o.id;
        RETURN NULL;
    ELSIF TG_OP = 'UPDATE' THEN  -- ON UPDATE NO ACTION: an old key gone but still referenced
        EXECUTE format(
            'SELECT o.id FROM civic_gis_old o WHERE NOT EXISTS (SELECT 1 FROM %I t '
            'WHERE t.id = o.id) AND EXISTS (SELECT 1 FROM field_points p WHERE p.%I = o.id) '
            'ORDER BY o.id LIMIT 1', TG_TABLE_NAME, col) INTO gone;
    ELSE  -- TRUNCATE: refused while field points refer to the table
        EXECUTE format('SELECT min(p.%I) FROM field_points p', col) INTO gone;
    END IF;
    IF gone IS NOT NULL THEN
        RAISE EXCEPTION 'update or delete on table "%" violates foreign key constraint "%" on '
            'table "field_points"', TG_TABLE_NAME, fk
            USING ERRCODE = 'foreign_key_violation',
                  DETAIL = format('Key (id)=(%s) is still referenced from table "field_points".',
                                  gone),
                  CONSTRAINT = fk, TABLE = 'field_points';
    END IF;
    RETURN NULL;
END $$;
"""

# (trigger, table, event, transition tables)
TRIGGERS = (
    ("civic_gis_field_points_refs_ins", "field_points", "INSERT", "NEW TABLE AS civic_gis_new"),
    (
        "civic_gis_field_points_refs_upd",
        "field_points",
        "UPDATE",
        "OLD TABLE AS civic_gis_old NEW TABLE AS civic_gis_new",
    ),
    ("civic_gis_field_points_uploads_del", "uploads", "DELETE", "OLD TABLE AS civic_gis_old"),
    (
        "civic_gis_field_points_uploads_upd",
        "uploads",
        "UPDATE",
        "OLD TABLE AS civic_gis_old NEW TABLE AS civic_gis_new",
    ),
    ("civic_gis_field_points_uploads_trunc", "uploads", "TRUNCATE", ""),
    ("civic_gis_field_points_photos_del", "field_photos", "DELETE", "OLD TABLE AS civic_gis_old"),
    (
        "civic_gis_field_points_photos_upd",
        "field_photos",
        "UPDATE",
        "OLD TABLE AS civic_gis_old NEW TABLE AS civic_gis_new",
    ),
    ("civic_gis_field_points_photos_trunc", "field_photos", "TRUNCATE", ""),
)


def upgrade() -> None:
    op.drop_constraint("fk_field_points_upload_id", "field_points", type_="foreignkey")
    op.drop_constraint("fk_field_points_photo_id", "field_points", type_="foreignkey")
    op.drop_index("ix_field_points_geog", table_name="field_points")
    op.drop_index("ix_field_points_matched", table_name="field_points")
    op.create_index("ix_field_points_observed_at", "field_points", ["observed_at"])
    op.create_index(
        "ix_field_points_photo_id",
        "field_points",
        ["photo_id"],
        postgresql_where=sa.text("photo_id IS NOT NULL"),
    )
    op.execute(FUNCTIONS)
    for name, table, event, referencing in TRIGGERS:
        function = (
            "civic_gis_field_points_refs()"
            if table == "field_points"
            else "civic_gis_field_points_referenced()"
        )
        op.execute(
            f"CREATE TRIGGER {name} AFTER {event} ON {table} "
            + (f"REFERENCING {referencing} " if referencing else "")
            + f"FOR EACH STATEMENT EXECUTE FUNCTION {function}"
        )


def downgrade() -> None:
    for name, table, _, _ in TRIGGERS:
        op.execute(f"DROP TRIGGER {name} ON {table}")
    op.execute("DROP FUNCTION civic_gis_field_points_refs()")
    op.execute("DROP FUNCTION civic_gis_field_points_referenced()")
    op.execute("DROP FUNCTION civic_gis_field_points_refs_exist(bigint[], bigint[])")
    op.drop_index("ix_field_points_photo_id", table_name="field_points")
    op.drop_index("ix_field_points_observed_at", table_name="field_points")
    op.create_index("ix_field_points_matched", "field_points", ["matched_layer", "matched_id"])
    op.create_index("ix_field_points_geog", "field_points", ["geog"], postgresql_using="gist")
    op.create_foreign_key(
        "fk_field_points_photo_id",
        "field_points",
        "field_photos",
        ["photo_id"],
        ["id"],
        ondelete="SET NULL",
    )
    op.create_foreign_key(
        "fk_field_points_upload_id",
        "field_points",
        "uploads",
        ["upload_id"],
        ["id"],
        ondelete="CASCADE",
    )
