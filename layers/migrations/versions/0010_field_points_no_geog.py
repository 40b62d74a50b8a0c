"""Field points: no geography twin

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03

`field_points.geog` was generated for every stored point (`geom::geography`), to be
indexed for the earlier-upload duplicate test; 0009 replaced that index by a btree on
`observed_at`, and nothing reads the column any more (snapping reads the assets' geography,
patrol coverage reads `field_tracks.geog`). Computing and storing it cost about 0.09 s of
server time per 100,000 points, on the write path of every upload (measured). A query that
ever needs it casts `geom` on the side that is not indexed.
"""

from __future__ import annotations

import geoalchemy2
import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_column("field_points", "geog")


def downgrade() -> None:
    op.add_column(
        "field_points",
        sa.Column(
            "geog",
            geoalchemy2.types.Geography(geometry_type="POINT", srid=4326, spatial_index=False),
            sa.Computed("(geom)::geography", persisted=True),
            nullable=True,
        ),
    )
