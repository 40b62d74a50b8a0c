"""Near pairs: which boards and bins stand near which buildings, entrances and compounds

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01

The coverage and signage checks ask, over a whole city, which of 200,000 points stand
within some metres of which of 500,000 buildings, entrances and compounds. Measured at
run time that is an index probe per point and a geodesic distance per candidate pair:
most of those checks' time. The database keeps the pairs instead, each with its geodesic
distance (`ST_Distance` on geography, metres), up to a reach per relation
(`near_relations.reach_m`) above every profile value; a check whose distance parameter is
within the reach filters the pairs, one above it measures at run time. A reach of 0 means
containment: the point intersects the polygon (`ST_Intersects` on the geometry).

Kept by statement triggers with transition tables, like the audit trail (0005), so a
200,000-row import refreshes its pairs in one set-based statement: an insert computes the
new rows' pairs, an update recomputes those of rows whose geometry changed, a delete or
truncate drops theirs. Attributes (a bin's kind or condition, a board's `fixed`, a
building's `residential`) are not copied: checks filter on them when they read the pairs.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

# (relation, points table, other table, reach in metres; 0: containment)
RELATIONS = (
    ("bins-buildings", "bins", "buildings", 100.0),
    ("signage-buildings", "signage", "buildings", 20.0),
    ("signage-entrances", "signage", "entrances", 50.0),
    ("signage-compounds", "signage", "compounds", 0.0),
)

TABLES = sorted({t for _, a, b, _ in RELATIONS for t in (a, b)})

FUNCTIONS = r"""
-- The pairs of every relation `tbl` takes part in, for its rows `ids` (NULL: all rows):
-- the old ones dropped, with `refill`, the current ones computed.
CREATE FUNCTION civic_gis_near_refresh(tbl text, ids bigint[], refill boolean) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    r near_relations;
    side text;
    other text;
    mine text;
    pair text;
BEGIN
    FOR r IN SELECT * FROM near_relations WHERE a_table = tbl OR b_table = tbl LOOP
        FOREACH side IN ARRAY ARRAY['a', 'b'] LOOP
            CONTINUE WHEN (side = 'a' AND r.a_table <> tbl) OR (side = 'b' AND r.b_table <> tbl);
            IF ids IS NULL THEN
                DELETE FROM near_pairs n WHERE n.relation = r.relation;
            ELSIF side = 'a' THEN
                DELETE FROM near_pairs n USING unnest(ids) AS u(id)
                WHERE n.relation = r.relation AND n.a_id = u.id;
            ELSE
                DELETE FROM near_pairs n USING unnest(ids) AS u(id)
                WHERE n.relation = r.relation AND n.b_id = u.id;
            END IF;
            CONTINUE WHEN NOT refill;
            -- `mine` is the side whose rows changed, `other` the side probed through its index.
            mine := side;
            other := CASE side WHEN 'a' THEN 'b' ELSE 'a' END;
            pair := CASE WHEN r.reach_m = 0 THEN 'ST_Intersects(b.geom, a.geom)'
                         ELSE format('ST_DWithin(%s.geog, %s.geog, %s)', other, mine, r.reach_m)
                    END;
            EXECUTE format(
                'INSERT INTO near_pairs (relation, a_id, b_id, distance_m) '
                'SELECT %L, a.id, b.id, %s FROM %I %s %s JOIN %I %s ON %s',
                r.relation,
                CASE WHEN r.reach_m = 0 THEN '0' ELSE 'ST_Distance(a.geog, b.geog)' END,
                CASE side WHEN 'a' THEN r.a_table ELSE r.b_table END, mine,
                CASE WHEN ids IS NULL THEN ''
                     ELSE format('JOIN unnest($1) AS u(id) ON u.id = %s.id', mine) END,
                CASE side WHEN 'a' THEN r.b_table ELSE r.a_table END, other,
                pair)
            USING ids;
        END LOOP;
    END LOOP;
END $$;

CREATE FUNCTION civic_gis_near_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM civic_gis_near_refresh(TG_TABLE_NAME, ARRAY(SELECT id FROM new_rows), true);
    ELSIF TG_OP = 'UPDATE' THEN
        PERFORM civic_gis_near_refresh(TG_TABLE_NAME, ARRAY(
            SELECT n.id FROM new_rows n JOIN old_rows o ON o.id = n.id
            WHERE n.geom::bytea IS DISTINCT FROM o.geom::bytea), true);
    ELSIF TG_OP = 'DELETE' THEN
        PERFORM civic_gis_near_refresh(TG_TABLE_NAME, ARRAY(SELECT id FROM old_rows), false);
    ELSE
        PERFORM civic_gis_near_refresh(TG_TABLE_NAME, NULL, false);
    END IF;
    RETURN NULL;
END $$;
"""


def _triggers(table: str) -> str:
    return f"""
CREATE TRIGGER near_insert AFTER INSERT ON {table} REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION civic_gis_near_changed();
CREATE TRIGGER near_update AFTER UPDATE ON {table}
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION civic_gis_near_changed();
CREATE TRIGGER near_delete AFTER DELETE ON {table} REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION civic_gis_near_changed();
CREATE TRIGGER near_truncate AFTER TRUNCATE ON {table}
    FOR EACH STATEMENT EXECUTE FUNCTION civic_gis_near_changed();
"""


def upgrade() -> None:
    op.create_table(
        "near_relations",
        sa.Column("relation", sa.Text(), nullable=False),
        sa.Column("a_table", sa.Text(), nullable=False, comment="the points"),
        sa.Column("b_table", sa.Text(), nullable=False),
        sa.Column(
            "reach_m",
            sa.Double(),
            nullable=False,
            comment="pairs kept up to this geodesic distance (m); 0: the point is inside",
        ),
        sa.CheckConstraint("reach_m >= 0", name=op.f("ck_near_relations_reach_not_negative")),
        sa.PrimaryKeyConstraint("relation", name=op.f("pk_near_relations")),
        comment="检查用的近邻关系 / relations whose near pairs the database keeps for the checks",
    )
    op.create_table(
        "near_pairs",
        sa.Column("relation", sa.Text(), nullable=False),
        sa.Column("a_id", sa.BigInteger(), nullable=False),
        sa.Column("b_id", sa.BigInteger(), nullable=False),
        sa.Column("distance_m", sa.Double(), nullable=False, comment="geodesic (m)"),
        sa.ForeignKeyConstraint(
            ["relation"],
            ["near_relations.relation"],
            name=op.f("fk_near_pairs_relation"),
        ),
        sa.PrimaryKeyConstraint("relation", "a_id", "b_id", name=op.f("pk_near_pairs")),
        comment="近邻对, 由触发器维护 / near pairs, kept by triggers",
    )
    op.create_index("ix_near_pairs_b", "near_pairs", ["relation", "b_id"])
    op.bulk_insert(
        sa.table(
            "near_relations",
            sa.column("relation", sa.Text()),
            sa.column("a_table", sa.Text()),
            sa.column("b_table", sa.Text()),
            sa.column("reach_m", sa.Double()),
        ),
        [{"relation": r, "a_table": a, "b_table": b, "reach_m": m} for r, a, b, m in RELATIONS],
    )
    op.execute(FUNCTIONS)
    for table in TABLES:
        op.execute(_triggers(table))
    for a_table in sorted({a for _, a, _, _ in RELATIONS}):
        op.execute(f"SELECT civic_gis_near_refresh('{a_table}', NULL, true)")
    op.execute("ANALYZE near_pairs")


def downgrade() -> None:
    for table in TABLES:
        for event in ("insert", "update", "delete", "truncate"):
            op.execute(f"DROP TRIGGER IF EXISTS near_{event} ON {table}")
    op.execute("DROP FUNCTION IF EXISTS civic_gis_near_changed()")
    op.execute("DROP FUNCTION IF EXISTS civic_gis_near_refresh(text, bigint[], boolean)")
    op.drop_index("ix_near_pairs_b", table_name="near_pairs")
    op.drop_table("near_pairs")
    op.drop_table("near_relations")
