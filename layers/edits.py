"""SQL of single-feature edits: lock, update, delete (the audit triggers record each)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, delete, func, select, update

from layers.catalog import LayerSpec
from layers.tables import SRID, table_of


@dataclass(frozen=True)
class StoredFeature:
    """A feature as stored: code, version, declared field values and WKB geometry."""

    id: int
    code: str
    version: int
    values: dict[str, Any]
    wkb: bytes


def lock_feature(conn: Connection, layer: LayerSpec, item_id: int) -> StoredFeature | None:
    """The feature, locked until the transaction ends (None if absent).

    The lock is what makes If-Match safe: of two edits holding the same ETag,
    the second waits here, then sees the first one's new version.
    """
    table = table_of(layer)
    names = layer.field_names()
    row = conn.execute(
        select(
            table.c.code,
            table.c.version,
            func.ST_AsBinary(table.c.geom),
            *(table.c[n] for n in names),
        )
        .where(table.c.id == item_id)
        .with_for_update()
    ).first()
    if row is None:
        return None
    return StoredFeature(
        item_id, row[0], int(row[1]), dict(zip(names, row[3:], strict=True)), bytes(row[2])
    )


def update_feature(
    conn: Connection,
    layer: LayerSpec,
    item_id: int,
    values: Mapping[str, Any],
    wkb: bytes | None = None,
) -> int | None:
    """Set field values and/or the geometry (WGS-84 WKB); the new version (None: nothing set)."""
    table = table_of(layer)
    assignments: dict[str, Any] = dict(values)
    if wkb is not None:
        assignments["geom"] = func.ST_GeomFromWKB(wkb, SRID)
    if not assignments:
        return None
    version = conn.execute(
        update(table).where(table.c.id == item_id).values(assignments).returning(table.c.version)
    ).scalar_one()
    return int(version)


def delete_feature(conn: Connection, layer: LayerSpec, item_id: int) -> None:
    """Delete the feature (references to its code follow their ON DELETE rule)."""
    table = table_of(layer)
    conn.execute(delete(table).where(table.c.id == item_id))


def feature_exists(conn: Connection, layer: LayerSpec, item_id: int) -> bool:
    """Whether the layer holds a feature with this id."""
    table = table_of(layer)
    return conn.execute(select(table.c.id).where(table.c.id == item_id)).first() is not None
