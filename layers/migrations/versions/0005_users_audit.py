"""Users, grid-scoped rights, API tokens and the audit trail of every layer write

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29

Why triggers: the campaign's archives (档案) must show who changed what,
whatever wrote the row — an HTTP edit, an upload, a CLI import or SQL typed
by hand. The writer names itself for its transaction with
`set_config('civic_gis.actor_id' | 'civic_gis.actor' | 'civic_gis.source', ..., true)`
(gis_api.auth.audit); a write that names nobody is recorded with actor NULL
and source 'database'.

The triggers are per statement with transition tables, so a 100,000-row
import writes its audit rows in one INSERT ... SELECT instead of 100,000
trigger calls. Updates that change nothing but the version and updated_at
(e.g. a grid redrawn without moving an asset) are not recorded. TRUNCATE is
recorded as one 'truncate' row: ids restart after it, so a feature's history
starts after the last truncate of its layer.

A layer added later attaches itself with `SELECT civic_gis_audit_attach('<table>')`.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

# Every layer a user writes (layers.catalog.CATALOG at 0005); derived layers
# (school_zones) are rebuilt by the database and not audited.
AUDITED = (
    "grids",
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

FUNCTIONS = r"""
-- A row as the archive keeps it: columns as JSON, the geometry as GeoJSON
-- (PostGIS casts geometry to GeoJSON, 9 decimals), the geography twin dropped.
CREATE FUNCTION civic_gis_audit_row(r jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT (r - 'geom' - 'geog') || jsonb_build_object('geometry', r -> 'geom')
$$;

CREATE FUNCTION civic_gis_audit() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v_actor_id bigint := NULLIF(current_setting('civic_gis.actor_id', true), '')::bigint;
    v_actor text := NULLIF(current_setting('civic_gis.actor', true), '');
    v_source text := COALESCE(NULLIF(current_setting('civic_gis.source', true), ''), 'database');
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO audit_log (actor_id, actor_name, source, layer, row_id, action, new)
        SELECT v_actor_id, v_actor, v_source, TG_TABLE_NAME, n.id, 'insert',
               civic_gis_audit_row(to_jsonb(n))
        FROM new_rows n ORDER BY n.id;
    ELSIF TG_OP = 'UPDATE' THEN
        INSERT INTO audit_log (actor_id, actor_name, source, layer, row_id, action, old, new)
        SELECT v_actor_id, v_actor, v_source, TG_TABLE_NAME, o.id, 'update', j.before, j.after
        FROM old_rows o
        JOIN new_rows n ON n.id = o.id
        CROSS JOIN LATERAL (
            SELECT civic_gis_audit_row(to_jsonb(o)) AS before,
                   civic_gis_audit_row(to_jsonb(n)) AS after
        ) j
        WHERE (j.before - 'version' - 'updated_at') IS DISTINCT FROM
              (j.after - 'version' - 'updated_at')
        ORDER BY o.id;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO audit_log (actor_id, actor_name, source, layer, row_id, action, old)
        SELECT v_actor_id, v_actor, v_source, TG_TABLE_NAME, o.id, 'delete',
               civic_gis_audit_row(to_jsonb(o))
        FROM old_rows o ORDER BY o.id;
    ELSE
        INSERT INTO audit_log (actor_id, actor_name, source, layer, action)
        VALUES (v_actor_id, v_actor, v_source, TG_TABLE_NAME, 'truncate');
    END IF;
    RETURN NULL;
END
$$;

CREATE FUNCTION civic_gis_audit_attach(t regclass) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('CREATE TRIGGER audit_insert AFTER INSERT ON %s '
                   'REFERENCING NEW TABLE AS new_rows '
                   'FOR EACH STATEMENT EXECUTE FUNCTION civic_gis_audit()', t);
    EXECUTE format('CREATE TRIGGER audit_update AFTER UPDATE ON %s '
                   'REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows '
                   'FOR EACH STATEMENT EXECUTE FUNCTION civic_gis_audit()', t);
    EXECUTE format('CREATE TRIGGER audit_delete AFTER DELETE ON %s '
                   'REFERENCING OLD TABLE AS old_rows '
                   'FOR EACH STATEMENT EXECUTE FUNCTION civic_gis_audit()', t);
    EXECUTE format('CREATE TRIGGER audit_truncate AFTER TRUNCATE ON %s '
                   'FOR EACH STATEMENT EXECUTE FUNCTION civic_gis_audit()', t);
END
$$;

CREATE FUNCTION civic_gis_audit_detach(t regclass) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('DROP TRIGGER IF EXISTS audit_insert ON %s', t);
    EXECUTE format('DROP TRIGGER IF EXISTS audit_update ON %s', t);
    EXECUTE format('DROP TRIGGER IF EXISTS audit_delete ON %s', t);
    EXECUTE format('DROP TRIGGER IF EXISTS audit_truncate ON %s', t);
END
$$;
"""

DROP_FUNCTIONS = """
DROP FUNCTION civic_gis_audit_detach(regclass);
DROP FUNCTION civic_gis_audit_attach(regclass);
DROP FUNCTION civic_gis_audit();
DROP FUNCTION civic_gis_audit_row(jsonb);
"""


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("role", sa.Text(), nullable=False),
        sa.Column("disabled", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=True, comment="argon2id; NULL: token only"),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "role IN ('inspector', 'planner', 'leader', 'admin')",
            name=op.f("ck_users_role_choice"),
        ),
        sa.CheckConstraint("name <> ''", name=op.f("ck_users_name_not_empty")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("name", name=op.f("uq_users_name")),
        comment="用户 / users",
    )
    op.create_table(
        "user_grids",
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("grid_code", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_user_grids_user_id"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("user_id", "grid_code", name=op.f("pk_user_grids")),
        comment="巡查员负责的网格 / the grids an inspector may change",
    )
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("lookup", sa.Text(), nullable=False, comment="public part of the token"),
        sa.Column("secret_hash", sa.Text(), nullable=False, comment="argon2id of the secret part"),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_api_tokens_user_id"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_tokens")),
        sa.UniqueConstraint("lookup", name=op.f("uq_api_tokens_lookup")),
        comment="API令牌(仅存哈希) / API tokens, hashed",
    )
    op.create_index(op.f("ix_api_tokens_user_id"), "api_tokens", ["user_id"], unique=False)
    op.create_table(
        "audit_log",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column(
            "at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.Column("actor_id", sa.BigInteger(), nullable=True),
        sa.Column("actor_name", sa.Text(), nullable=True),
        sa.Column("source", sa.Text(), nullable=False, comment="request, upload, cli or database"),
        sa.Column("layer", sa.Text(), nullable=False),
        sa.Column("row_id", sa.BigInteger(), nullable=True),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("old", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("new", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.CheckConstraint(
            "action IN ('insert', 'update', 'delete', 'truncate')",
            name=op.f("ck_audit_log_action_choice"),
        ),
        sa.ForeignKeyConstraint(
            ["actor_id"], ["users.id"], name=op.f("fk_audit_log_actor_id"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
        comment="变更档案 / audit trail of every layer write (kept by triggers)",
    )
    op.create_index("ix_audit_log_at", "audit_log", ["at"], unique=False)
    op.create_index("ix_audit_log_layer_row", "audit_log", ["layer", "row_id", "id"], unique=False)
    op.execute(FUNCTIONS)
    for table in AUDITED:
        op.execute(f"SELECT civic_gis_audit_attach('{table}')")


def downgrade() -> None:
    for table in AUDITED:
        op.execute(f"SELECT civic_gis_audit_detach('{table}')")
    op.execute(DROP_FUNCTIONS)
    op.drop_index("ix_audit_log_layer_row", table_name="audit_log")
    op.drop_index("ix_audit_log_at", table_name="audit_log")
    op.drop_table("audit_log")
    op.drop_index(op.f("ix_api_tokens_user_id"), table_name="api_tokens")
    op.drop_table("api_tokens")
    op.drop_table("user_grids")
    op.drop_table("users")
