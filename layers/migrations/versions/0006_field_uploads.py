"""Field uploads: uploads, field points, tracks and photos

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30

An upload is one row per distinct file: `sha256` and `idempotency_key` are unique, so
two identical uploads racing each other meet at the unique index and the second one's
`INSERT ... ON CONFLICT DO NOTHING` waits for the first to commit and then writes nothing.
Asset status changes caused by an upload are not copied here: the audit triggers of
0005 record them (source 'upload:<id> ...', with the uploader), one record of who
changed what. Nothing here has a foreign key to users, grids or layers, which tests
and the demo truncate and reload.
"""

from __future__ import annotations

import geoalchemy2
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def _upload_fk() -> sa.Column[int]:
    return sa.Column("upload_id", sa.BigInteger(), nullable=False)


def upgrade() -> None:
    op.create_table(
        "uploads",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("sha256", sa.Text(), nullable=False, comment="hex digest of the file"),
        sa.Column("idempotency_key", sa.Text(), nullable=True),
        sa.Column("uploader_id", sa.BigInteger(), nullable=True),
        sa.Column("uploader_name", sa.Text(), nullable=True),
        sa.Column("source", sa.Text(), nullable=False, comment="http or cli"),
        sa.Column("filename", sa.Text(), nullable=True),
        sa.Column("format", sa.Text(), nullable=False),
        sa.Column("declared_crs", sa.Text(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("kind_hint", sa.Text(), nullable=True),
        sa.Column("layer_hint", sa.Text(), nullable=True),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("report", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.CheckConstraint(
            "status IN ('stored', 'partial')", name=op.f("ck_uploads_status_choice")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_uploads")),
        sa.UniqueConstraint("sha256", name=op.f("uq_uploads_sha256")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_uploads_idempotency_key")),
        comment="外业上传 / field uploads, one row per distinct file",
    )
    op.create_table(
        "field_photos",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        _upload_fk(),
        sa.Column("sha256", sa.Text(), nullable=False),
        sa.Column(
            "content",
            sa.LargeBinary(),
            nullable=False,
            comment="JPEG, personal metadata removed",
        ),
        sa.ForeignKeyConstraint(
            ["upload_id"],
            ["uploads.id"],
            name=op.f("fk_field_photos_upload_id"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_field_photos")),
        comment="现场照片 / photo evidence (cleaned copy)",
    )
    op.create_index(op.f("ix_field_photos_upload_id"), "field_photos", ["upload_id"])
    op.create_table(
        "field_points",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        _upload_fk(),
        sa.Column("row", sa.Integer(), nullable=False, comment="element/row/line in the file"),
        sa.Column("orig_x", sa.Double(), nullable=False),
        sa.Column("orig_y", sa.Double(), nullable=False),
        sa.Column("crs", sa.Text(), nullable=False),
        sa.Column("observed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("elevation_m", sa.Double(), nullable=True),
        sa.Column("accuracy_m", sa.Double(), nullable=True),
        sa.Column("hdop", sa.Double(), nullable=True),
        sa.Column("pdop", sa.Double(), nullable=True),
        sa.Column("vdop", sa.Double(), nullable=True),
        sa.Column("satellites", sa.Integer(), nullable=True),
        sa.Column("device", sa.Text(), nullable=True),
        sa.Column("kind", sa.Text(), nullable=True),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column(
            "properties",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("photo_id", sa.BigInteger(), nullable=True),
        sa.Column("grid_id", sa.BigInteger(), nullable=True, comment="grid holding the point"),
        sa.Column(
            "observation",
            sa.Text(),
            nullable=True,
            comment="canonical kind, e.g. street_lamps:unlit",
        ),
        sa.Column("snap", sa.Text(), nullable=False),
        sa.Column("snap_reason", sa.Text(), nullable=True),
        sa.Column("matched_layer", sa.Text(), nullable=True),
        sa.Column("matched_id", sa.BigInteger(), nullable=True),
        sa.Column("matched_code", sa.Text(), nullable=True),
        sa.Column("match_distance_m", sa.Double(), nullable=True),
        sa.Column(
            "geom",
            geoalchemy2.types.Geometry(
                geometry_type="POINT", srid=4326, spatial_index=False, nullable=False
            ),
            nullable=False,
        ),
        sa.Column(
            "geog",
            geoalchemy2.types.Geography(geometry_type="POINT", srid=4326, spatial_index=False),
            sa.Computed("(geom)::geography", persisted=True),
            nullable=True,
        ),
        sa.CheckConstraint(
            "snap IN ('matched', 'ambiguous', 'too_inaccurate', 'no_asset', "
            "'not_an_asset_kind', 'created')",
            name=op.f("ck_field_points_snap_choice"),
        ),
        sa.ForeignKeyConstraint(
            ["photo_id"],
            ["field_photos.id"],
            name=op.f("fk_field_points_photo_id"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["upload_id"],
            ["uploads.id"],
            name=op.f("fk_field_points_upload_id"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_field_points")),
        comment="外业点位 / field observations",
    )
    op.create_index(op.f("ix_field_points_upload_id"), "field_points", ["upload_id"])
    op.create_index("ix_field_points_geog", "field_points", ["geog"], postgresql_using="gist")
    op.create_index("ix_field_points_matched", "field_points", ["matched_layer", "matched_id"])
    op.create_table(
        "field_tracks",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        _upload_fk(),
        sa.Column("row", sa.Integer(), nullable=False),
        sa.Column(
            "kind",
            sa.Text(),
            nullable=False,
            comment="track (walked), route (planned), line",
        ),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("vertices", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "properties",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column(
            "geom",
            geoalchemy2.types.Geometry(
                geometry_type="LINESTRING", srid=4326, spatial_index=False, nullable=False
            ),
            nullable=False,
        ),
        sa.Column(
            "geog",
            geoalchemy2.types.Geography(geometry_type="LINESTRING", srid=4326, spatial_index=False),
            sa.Computed("(geom)::geography", persisted=True),
            nullable=True,
        ),
        sa.ForeignKeyConstraint(
            ["upload_id"],
            ["uploads.id"],
            name=op.f("fk_field_tracks_upload_id"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_field_tracks")),
        comment="外业轨迹 / field tracks (patrol coverage)",
    )
    op.create_index(op.f("ix_field_tracks_upload_id"), "field_tracks", ["upload_id"])
    op.create_index("ix_field_tracks_geog", "field_tracks", ["geog"], postgresql_using="gist")
    op.create_index("ix_field_tracks_started_at", "field_tracks", ["started_at"])


def downgrade() -> None:
    op.drop_table("field_tracks")
    op.drop_table("field_points")
    op.drop_table("field_photos")
    op.drop_table("uploads")
