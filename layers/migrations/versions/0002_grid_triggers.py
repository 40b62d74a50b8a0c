"""Triggers that keep grid_id, version and updated_at correct on every layer.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25

Why triggers: the grid an asset lies in decides who answers for it (grid
officer, scorecards, grid-scoped rights), so it must stay right whatever
writes the row (import, upload, edit, SQL by hand) and when grids are redrawn.
An asset's grid is the grid-level cell containing its point-on-surface (a
point for points, an interior point for lines and polygons); on a shared
boundary the lowest grid id wins, deterministically.
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

ASSET_TABLES = (
    "roads",
    "street_lamps",
    "bins",
    "schools",
    "venues",
    "illegal_buildings",
    "signage",
    "compounds",
    "buildings",
    "entrances",
)
ALL_TABLES = ("grids", *ASSET_TABLES)

FUNCTIONS = r"""
CREATE FUNCTION civic_gis_grid_of(g geometry) RETURNS bigint
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT id FROM grids
    WHERE level = 'grid' AND ST_Intersects(geom, ST_PointOnSurface(g))
    ORDER BY id
    LIMIT 1
$$;

CREATE FUNCTION civic_gis_assign_grid() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.grid_id := civic_gis_grid_of(NEW.geom);
    RETURN NEW;
END
$$;

CREATE FUNCTION civic_gis_touch() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    NEW.version := OLD.version + 1;
    RETURN NEW;
END
$$;

-- Statement-level: reassign the assets under grids that appeared, vanished
-- or changed shape.  Asset tables are found by their grid_id column, so a
-- layer added later is covered without touching this function.
CREATE FUNCTION civic_gis_reassign_assets() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    t regclass;
    areas geometry[];
BEGIN
    IF TG_OP = 'INSERT' THEN
        SELECT array_agg(geom) INTO areas FROM new_rows WHERE level = 'grid';
    ELSIF TG_OP = 'DELETE' THEN
        SELECT array_agg(geom) INTO areas FROM old_rows WHERE level = 'grid';
    ELSE
        SELECT array_agg(g) INTO areas FROM (
            SELECT o.geom AS g FROM old_rows o JOIN new_rows n ON n.id = o.id
            WHERE o.geom IS DISTINCT FROM n.geom OR o.level IS DISTINCT FROM n.level
            UNION ALL
            SELECT n.geom FROM old_rows o JOIN new_rows n ON n.id = o.id
            WHERE o.geom IS DISTINCT FROM n.geom OR o.level IS DISTINCT FROM n.level
        ) changed;
    END IF;
    IF areas IS NULL THEN
        RETURN NULL;
    END IF;
    FOR t IN
        SELECT c.oid::regclass
        FROM pg_attribute a
        JOIN pg_class c ON c.oid = a.attrelid
        WHERE a.attname = 'grid_id' AND NOT a.attisdropped AND c.relkind = 'r'
          AND c.relnamespace = (SELECT relnamespace FROM pg_class WHERE oid = TG_RELID)
    LOOP
        EXECUTE format(
            'UPDATE %s x SET grid_id = civic_gis_grid_of(x.geom)
             FROM (SELECT unnest($1) AS g) a
             WHERE ST_Intersects(a.g, x.geom)', t)
        USING areas;
    END LOOP;
    RETURN NULL;
END
$$;
"""


def upgrade() -> None:
    op.execute(FUNCTIONS)
    for table in ASSET_TABLES:
        op.execute(
            f"CREATE TRIGGER assign_grid BEFORE INSERT OR UPDATE OF geom, grid_id ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION civic_gis_assign_grid()"
        )
    for table in ALL_TABLES:
        op.execute(
            # Every UPDATE is a write and bumps the version (a WHEN clause
            # comparing rows is not allowed on tables with generated columns).
            f"CREATE TRIGGER touch BEFORE UPDATE ON {table} FOR EACH ROW "
            "EXECUTE FUNCTION civic_gis_touch()"
        )
    for event, refs in (
        ("INSERT", "NEW TABLE AS new_rows"),
        ("DELETE", "OLD TABLE AS old_rows"),
        ("UPDATE", "OLD TABLE AS old_rows NEW TABLE AS new_rows"),
    ):
        op.execute(
            f"CREATE TRIGGER reassign_assets_{event.lower()} AFTER {event} ON grids "
            f"REFERENCING {refs} FOR EACH STATEMENT EXECUTE FUNCTION civic_gis_reassign_assets()"
        )


def downgrade() -> None:
    for event in ("insert", "delete", "update"):
        op.execute(f"DROP TRIGGER reassign_assets_{event} ON grids")
    for table in ALL_TABLES:
        op.execute(f"DROP TRIGGER touch ON {table}")
    for table in ASSET_TABLES:
        op.execute(f"DROP TRIGGER assign_grid ON {table}")
    op.execute("DROP FUNCTION civic_gis_reassign_assets()")
    op.execute("DROP FUNCTION civic_gis_touch()")
    op.execute("DROP FUNCTION civic_gis_assign_grid()")
    op.execute("DROP FUNCTION civic_gis_grid_of(geometry)")
