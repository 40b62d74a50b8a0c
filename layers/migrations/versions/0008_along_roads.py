"""Where each lamp and bin stands along its road, kept by triggers for the spacing checks

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-27

`lamp-spacing` and `bin-spacing` order the assets of every road along it. Locating
600,000 lamps on their roads (`ST_LineLocatePoint` on the road scaled to be locally
conformal) was the largest part of a whole-city run, and it gives the same answer every
time until a lamp or a road moves. The database keeps it instead: for every asset whose
`road_code` names a road, `<layer>_on_roads` holds the road id, the fraction `f` along
it, and copies of the columns the rules filter and weigh on (placement, status, pole
height and light distribution for lamps; kind and condition for bins), so a run reads
one narrow table and joins nothing. Assets without a road code belong to the nearest
road within a tolerance the profile sets, so they are still located at run time, with
the same function (`civic_gis_road_fraction`).

For lamps the database also keeps the stretches between consecutive counted lamps of
every road (`lamp_stretches`: counted as `lamp-spacing` counts them, placement `road` and
status not `missing`; a stretch from the road's start to its first lamp, from its last
lamp to the end, or the whole of a road without lamps has NULL at that end), with both
lamps' pole heights and light distributions, so that a
whole-city run neither sorts 600,000 positions nor walks them with a window: it joins
each stretch to the road's class values and measures the few that may be too long. What
a stretch may be (the allowed spacing) still comes from the profile at run time.

Kept by statement triggers with transition tables, like the near pairs (0007): a write to
an asset table refreshes the rows it touched; a road inserted or reshaped refreshes the
assets that name it (a code change or a deletion reaches the assets through their
foreign key's ON UPDATE CASCADE / ON DELETE SET NULL, and so through their triggers).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

# asset table -> the columns copied beside its position (as in 0001)
COPIED: dict[str, tuple[tuple[str, type[sa.types.TypeEngine[Any]]], ...]] = {
    "street_lamps": (
        ("placement", sa.Text),
        ("status", sa.Text),
        ("pole_height_m", sa.Double),
        ("light_distribution", sa.Text),
    ),
    "bins": (("kind", sa.Text), ("condition", sa.Text)),
}

FUNCTIONS = r"""
-- Longitude scale making degrees locally conformal at a road's mid-latitude:
-- metres per degree of longitude / metres per degree of latitude = N cos φ / M
-- (0.0066943800229: e² of the WGS-84 / CGCS2000 ellipsoid, as layers.checks.near.E2).
-- (Single expressions, so that the planner inlines them.)
CREATE FUNCTION civic_gis_road_kx(road geometry) RETURNS float8
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT cos(radians((ST_YMin(road) + ST_YMax(road)) / 2))
           * (1 - 0.0066943800229 * sin(radians((ST_YMin(road) + ST_YMax(road)) / 2)) ^ 2) / (1 - 0.0066943800229)
$$;

-- Where `pt` falls along `road`, as a fraction of its length, located in the scaled space
-- (feet and order right to millimetres over a road of a few kilometres).
CREATE FUNCTION civic_gis_road_fraction(road geometry, pt geometry) RETURNS float8
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT ST_LineLocatePoint(ST_SetSRID(ST_Scale(road, civic_gis_road_kx(road), 1), 0),
                              ST_MakePoint(ST_X(pt) * civic_gis_road_kx(road), ST_Y(pt)))
$$;

-- The positions of `layer`'s rows `ids` (NULL: all rows) recomputed from the asset table,
-- with (`stretches`) the lamp stretches of the roads they left or joined.
CREATE FUNCTION civic_gis_on_roads_refresh(layer text, ids bigint[], stretches boolean)
RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    target text := layer || '_on_roads';
    cols text;
    a_cols text;
    touched bigint[];
BEGIN
    SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum),
           string_agg('a.' || quote_ident(attname), ', ' ORDER BY attnum)
    INTO cols, a_cols
    FROM pg_attribute
    WHERE attrelid = target::regclass AND attnum > 0 AND NOT attisdropped
      AND attname NOT IN ('id', 'road_id', 'f');
    IF ids IS NULL THEN
        EXECUTE format('TRUNCATE %I', target);
        EXECUTE format(
            'INSERT INTO %I (id, road_id, f, %s) '
            'SELECT a.id, r.id, civic_gis_road_fraction(r.geom, a.geom), %s '
            'FROM %I a JOIN roads r ON r.code = a.road_code',
            target, cols, a_cols, layer);
        IF layer = 'street_lamps' AND stretches THEN
            PERFORM civic_gis_lamp_stretches_refresh(NULL);
        END IF;
        RETURN;
    END IF;
    EXECUTE format(
        'WITH gone AS (DELETE FROM %I t USING unnest($1) AS u(id) WHERE t.id = u.id '
        '              RETURNING t.road_id), '
        'came AS (INSERT INTO %I (id, road_id, f, %s) '
        '         SELECT a.id, r.id, civic_gis_road_fraction(r.geom, a.geom), %s '
        '         FROM unnest($1) AS u(id) JOIN %I a ON a.id = u.id '
        '         JOIN roads r ON r.code = a.road_code '
        '         RETURNING road_id) '
        'SELECT ARRAY(SELECT road_id FROM gone UNION SELECT road_id FROM came)',
        target, target, cols, a_cols, layer)
    INTO touched
    USING ids;
    IF layer = 'street_lamps' AND stretches AND touched <> '{}' THEN
        PERFORM civic_gis_lamp_stretches_refresh(touched);
    END IF;
END $$;

-- The lamp stretches of roads `road_ids` (NULL: all roads), from the kept positions.
CREATE FUNCTION civic_gis_lamp_stretches_refresh(road_ids bigint[]) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    -- (planned per call: all roads scan, a few roads probe the indexes)
    lamps text := CASE WHEN road_ids IS NULL THEN 'TRUE' ELSE 'p.road_id = ANY($1)' END;
    roads text := CASE WHEN road_ids IS NULL THEN 'TRUE' ELSE 'r.id = ANY($1)' END;
BEGIN
    IF road_ids IS NULL THEN
        TRUNCATE lamp_stretches;
    ELSE
        DELETE FROM lamp_stretches s USING unnest(road_ids) AS u(id) WHERE s.road_id = u.id;
    END IF;
    EXECUTE format($q$
        INSERT INTO lamp_stretches (road_id, from_id, to_id, f1, f2, from_pole_height_m,
                                    from_light_distribution, to_pole_height_m,
                                    to_light_distribution)
        SELECT road_id, from_id, to_id, f1, f2, from_pole_height_m, from_light_distribution,
               to_pole_height_m, to_light_distribution
        FROM (
            SELECT road_id, lag(id) OVER o AS from_id, id AS to_id, lag(f) OVER o AS f1,
                   f AS f2, k, lag(pole_height_m) OVER o AS from_pole_height_m,
                   lag(light_distribution) OVER o AS from_light_distribution,
                   pole_height_m AS to_pole_height_m, light_distribution AS to_light_distribution
            FROM (
                SELECT p.road_id, p.id, p.f, 1 AS k, p.pole_height_m, p.light_distribution
                FROM street_lamps_on_roads p
                WHERE p.placement = 'road' AND p.status <> 'missing' AND %s
                UNION ALL
                SELECT r.id, NULL, e.f, e.k, NULL, NULL
                FROM roads r
                CROSS JOIN (VALUES (0.0::float8, 0), (1.0::float8, 2)) AS e(f, k)
                WHERE %s
            ) pts
            WINDOW o AS (PARTITION BY road_id ORDER BY f, k, id)
        ) seg
        WHERE k > 0 $q$, lamps, roads)
    USING road_ids;
END $$;

CREATE FUNCTION civic_gis_on_roads_assets_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM civic_gis_on_roads_refresh(TG_TABLE_NAME, ARRAY(SELECT id FROM new_rows), true);
    ELSIF TG_OP = 'UPDATE' THEN
        PERFORM civic_gis_on_roads_refresh(TG_TABLE_NAME, ARRAY(
            SELECT id FROM new_rows UNION SELECT id FROM old_rows), true);
    ELSIF TG_OP = 'DELETE' THEN
        PERFORM civic_gis_on_roads_refresh(TG_TABLE_NAME, ARRAY(SELECT id FROM old_rows), true);
    ELSE
        EXECUTE format('TRUNCATE %I', TG_TABLE_NAME || '_on_roads');
        IF TG_TABLE_NAME = 'street_lamps' THEN
            PERFORM civic_gis_lamp_stretches_refresh(NULL);
        END IF;
    END IF;
    RETURN NULL;
END $$;

-- Roads that appeared, changed shape or code, or vanished: their assets again.
CREATE FUNCTION civic_gis_on_roads_roads_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    layer text;
    codes text[];
    road_ids bigint[];
BEGIN
    IF TG_OP = 'INSERT' THEN
        codes := ARRAY(SELECT code FROM new_rows);
        road_ids := ARRAY(SELECT id FROM new_rows);
    ELSIF TG_OP = 'DELETE' THEN
        road_ids := ARRAY(SELECT id FROM old_rows);
    ELSIF TG_OP = 'UPDATE' THEN
        SELECT array_agg(o.code) || array_agg(n.code), array_agg(o.id)
        INTO codes, road_ids
        FROM old_rows o JOIN new_rows n ON n.id = o.id
        WHERE o.geom::bytea IS DISTINCT FROM n.geom::bytea OR o.code IS DISTINCT FROM n.code;
    END IF;
    FOREACH layer IN ARRAY ARRAY['street_lamps', 'bins'] LOOP
        IF TG_OP = 'TRUNCATE' THEN
            EXECUTE format('TRUNCATE %I', layer || '_on_roads');
            CONTINUE;
        END IF;
        EXECUTE format(
            'SELECT civic_gis_on_roads_refresh(%L, ARRAY('
            '    SELECT id FROM %I WHERE road_code = ANY($1)'
            '    UNION SELECT id FROM %I WHERE road_id = ANY($2)), false)',
            layer, layer, layer || '_on_roads')
        USING coalesce(codes, '{}'), coalesce(road_ids, '{}');
    END LOOP;
    -- Once, after the assets (their positions on a deleted road are gone now): the assets
    -- refreshed above lie on these roads; a road without lamps is one stretch, a deleted
    -- road has none.
    IF TG_OP = 'TRUNCATE' THEN
        TRUNCATE lamp_stretches;
    ELSIF road_ids IS NOT NULL THEN
        PERFORM civic_gis_lamp_stretches_refresh(road_ids);
    END IF;
    RETURN NULL;
END $$;
"""


def _asset_triggers(table: str) -> str:
    return f"""
CREATE TRIGGER on_roads_insert AFTER INSERT ON {table} REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION civic_gis_on_roads_assets_changed();
CREATE TRIGGER on_roads_update AFTER UPDATE ON {table}
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION civic_gis_on_roads_assets_changed();
CREATE TRIGGER on_roads_delete AFTER DELETE ON {table} REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION civic_gis_on_roads_assets_changed();
CREATE TRIGGER on_roads_truncate AFTER TRUNCATE ON {table}
    FOR EACH STATEMENT EXECUTE FUNCTION civic_gis_on_roads_assets_changed();
"""


ROAD_TRIGGERS = """
CREATE TRIGGER on_roads_insert AFTER INSERT ON roads REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION civic_gis_on_roads_roads_changed();
CREATE TRIGGER on_roads_update AFTER UPDATE ON roads
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION civic_gis_on_roads_roads_changed();
CREATE TRIGGER on_roads_delete AFTER DELETE ON roads REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION civic_gis_on_roads_roads_changed();
CREATE TRIGGER on_roads_truncate AFTER TRUNCATE ON roads
    FOR EACH STATEMENT EXECUTE FUNCTION civic_gis_on_roads_roads_changed();
"""


def upgrade() -> None:
    for table, copied in COPIED.items():
        op.create_table(
            f"{table}_on_roads",
            sa.Column("id", sa.BigInteger(), nullable=False, comment=f"{table}.id"),
            sa.Column("road_id", sa.BigInteger(), nullable=False, comment="roads.id"),
            sa.Column("f", sa.Double(), nullable=False, comment="fraction of the road's length"),
            *(sa.Column(name, type_(), nullable=True) for name, type_ in copied),
            sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{table}_on_roads")),
            comment="沿道路位置, 由触发器维护 / position along the named road, kept by triggers",
        )
        op.create_index(f"ix_{table}_on_roads_road_id", f"{table}_on_roads", ["road_id"])
        op.create_index(f"ix_{table}_road_code", table, ["road_code"])
    op.create_table(
        "lamp_stretches",
        sa.Column("road_id", sa.BigInteger(), nullable=False, comment="roads.id"),
        sa.Column("from_id", sa.BigInteger(), nullable=True, comment="lamp; NULL: road start"),
        sa.Column("to_id", sa.BigInteger(), nullable=True, comment="lamp; NULL: road end"),
        sa.Column("f1", sa.Double(), nullable=False),
        sa.Column("f2", sa.Double(), nullable=False),
        sa.Column("from_pole_height_m", sa.Double(), nullable=True),
        sa.Column("from_light_distribution", sa.Text(), nullable=True),
        sa.Column("to_pole_height_m", sa.Double(), nullable=True),
        sa.Column("to_light_distribution", sa.Text(), nullable=True),
        comment="相邻路灯间路段, 由触发器维护 / stretches between consecutive lamps, kept by "
        "triggers",
    )
    op.create_index("ix_lamp_stretches_road_id", "lamp_stretches", ["road_id"])
    op.execute(FUNCTIONS)
    for table in COPIED:
        op.execute(_asset_triggers(table))
    op.execute(ROAD_TRIGGERS)
    for table in COPIED:
        op.execute(f"SELECT civic_gis_on_roads_refresh('{table}', NULL, true)")
        op.execute(f"ANALYZE {table}_on_roads")
    op.execute("ANALYZE lamp_stretches")


def downgrade() -> None:
    for table in ("roads", *COPIED):
        for event in ("insert", "update", "delete", "truncate"):
            op.execute(f"DROP TRIGGER IF EXISTS on_roads_{event} ON {table}")
    op.execute("DROP FUNCTION IF EXISTS civic_gis_on_roads_roads_changed()")
    op.execute("DROP FUNCTION IF EXISTS civic_gis_on_roads_assets_changed()")
    op.execute("DROP FUNCTION IF EXISTS civic_gis_lamp_stretches_refresh(bigint[])")
    op.execute("DROP FUNCTION IF EXISTS civic_gis_on_roads_refresh(text, bigint[], boolean)")
    op.execute("DROP FUNCTION IF EXISTS civic_gis_road_fraction(geometry, geometry)")
    op.execute("DROP FUNCTION IF EXISTS civic_gis_road_kx(geometry)")
    op.drop_index("ix_lamp_stretches_road_id", table_name="lamp_stretches")
    op.drop_table("lamp_stretches")
    for table in COPIED:
        op.drop_index(f"ix_{table}_road_code", table_name=table)
        op.drop_index(f"ix_{table}_on_roads_road_id", table_name=f"{table}_on_roads")
        op.drop_table(f"{table}_on_roads")
