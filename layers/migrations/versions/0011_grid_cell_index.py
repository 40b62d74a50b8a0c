"""Grids: a spatial index of the grid cells alone

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03

Every query that places a point in its grid cell (`level = 'grid' AND ST_Intersects(geom,
point)`: the upload lookups, grid rights, `civic_gis_grid_of` in the grid triggers) probed
`ix_grids_geom`, which also holds the large boxes of the streets, communities and the
district: 0.1 ms per point on the large city (6,086 cells), 1 s per 10,000 uploaded points.
A partial GiST index of the cells answers the same probes in a third of the time (measured:
0.98 -> 0.33 s for 10,000 points).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_grids_cell_geom",
        "grids",
        ["geom"],
        postgresql_using="gist",
        postgresql_where=sa.text("level = 'grid'"),
    )


def downgrade() -> None:
    op.drop_index("ix_grids_cell_geom", table_name="grids")
