"""Read queries over the layers that know nothing of HTTP."""

from __future__ import annotations

from sqlalchemy import Engine, func, select

from layers.catalog import CATALOG, Catalog
from layers.tables import METADATA


def layer_counts(engine: Engine, catalog: Catalog = CATALOG) -> dict[str, int]:
    """Number of features in every layer."""
    with engine.connect() as conn:
        return {
            spec.id: int(
                conn.execute(
                    select(func.count()).select_from(METADATA.tables[spec.table])
                ).scalar_one()
            )
            for spec in catalog
        }
