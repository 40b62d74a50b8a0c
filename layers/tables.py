"""SQLAlchemy tables derived from the layer catalog.

Every layer table has the same skeleton (stable id, human code, free JSONB
properties, timestamps, a version for optimistic locking, the grid it lies
in) plus its declared fields and a geometry in EPSG:4326 with a generated,
GiST-indexed geography twin.  Distance rules join on the geography column so
that `ST_DWithin(a.geog, b.geog, metres)` is both geodesic and index-assisted
(a cast inside the join predicate defeats the index: 346 s vs 0.19 s, TRAPS.md).
"""

from __future__ import annotations

from typing import Any

from geoalchemy2 import Geography, Geometry
from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Computed,
    Date,
    DateTime,
    Double,
    ForeignKey,
    Identity,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.types import TypeEngine

from layers.catalog import COLLECTIONS, Catalog, FieldKind, LayerField, LayerSpec

SRID = 4326

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_name)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s",
    "pk": "pk_%(table_name)s",
}

_SQL_TYPES: dict[FieldKind, type[TypeEngine[Any]]] = {
    FieldKind.TEXT: Text,
    FieldKind.CHOICE: Text,
    FieldKind.INTEGER: Integer,
    FieldKind.FLOAT: Double,
    FieldKind.BOOLEAN: Boolean,
    FieldKind.DATE: Date,
    FieldKind.DATETIME: DateTime,
}


def _sql_literal(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


def _field_column(field: LayerField) -> Column[Any]:
    sql_type = _SQL_TYPES[field.kind]
    type_ = DateTime(timezone=True) if field.kind is FieldKind.DATETIME else sql_type()
    fk = []
    if field.references is not None:
        # Codes are what users import and read; ON UPDATE CASCADE keeps the
        # links when a code is corrected.
        fk.append(
            ForeignKey(
                f"{field.references.layer}.code",
                onupdate="CASCADE",
                ondelete=field.references.on_delete,
                deferrable=True,
                initially="DEFERRED",
            )
        )
    server_default = None if field.default is None else text(_sql_literal(field.default))
    return Column(
        field.name,
        type_,
        *fk,
        nullable=not (field.required or field.default is not None),
        server_default=server_default,
        comment=f"{field.zh} / {field.en}",
    )


def _field_checks(layer: LayerSpec, field: LayerField) -> list[CheckConstraint]:
    checks: list[CheckConstraint] = []
    if field.choices:
        allowed = ", ".join(_sql_literal(k) for k in field.choice_keys())
        checks.append(CheckConstraint(f"{field.name} IN ({allowed})", name=f"{field.name}_choice"))
    if field.pattern:
        checks.append(
            CheckConstraint(
                f"{field.name} ~ {_sql_literal(field.pattern)}", name=f"{field.name}_pattern"
            )
        )
    if field.minimum is not None:
        checks.append(
            CheckConstraint(f"{field.name} >= {field.minimum!r}", name=f"{field.name}_min")
        )
    if field.maximum is not None:
        checks.append(
            CheckConstraint(f"{field.name} <= {field.maximum!r}", name=f"{field.name}_max")
        )
    return checks


def layer_table(layer: LayerSpec, metadata: MetaData) -> Table:
    """Build the table of one layer on `metadata`."""
    geom_type = layer.geometry.value
    columns: list[Any] = [
        Column("id", BigInteger, Identity(always=False), primary_key=True),
        Column("code", Text, nullable=False, unique=True, comment="编码 / code"),
        *(_field_column(f) for f in layer.fields),
        Column("properties", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=text("now()")),
        Column("updated_at", DateTime(timezone=True), nullable=False, server_default=text("now()")),
        Column("version", Integer, nullable=False, server_default=text("1")),
    ]
    if layer.in_grid:
        columns.append(
            Column(
                "grid_id",
                BigInteger,
                ForeignKey("grids.id", ondelete="SET NULL"),
                nullable=True,
                index=True,
                comment="所在网格 / grid (kept by trigger)",
            )
        )
    columns += [
        Column(
            "geom",
            Geometry(geom_type, srid=SRID, spatial_index=False, nullable=False),
            nullable=False,
        ),
        Column(
            "geog",
            Geography(geom_type, srid=SRID, spatial_index=False),
            Computed("(geom)::geography", persisted=True),
        ),
    ]
    if layer.geodesic_area:
        columns.append(
            Column(
                "area_m2",
                Double,
                Computed("ST_Area((geom)::geography, true)", persisted=True),
                comment="面积(平方米, 椭球面) / geodesic area m²",
            )
        )
    checks = [c for f in layer.fields for c in _field_checks(layer, f)]
    checks.append(CheckConstraint("ST_IsValid(geom)", name="geom_valid"))
    checks.append(CheckConstraint("code <> ''", name="code_not_empty"))
    if layer.code_pattern:
        checks.append(
            CheckConstraint(f"code ~ {_sql_literal(layer.code_pattern)}", name="code_pattern")
        )
    table = Table(layer.table, metadata, *columns, *checks, comment=f"{layer.zh} / {layer.en}")
    Index(f"ix_{layer.table}_geom", table.c.geom, postgresql_using="gist")
    Index(f"ix_{layer.table}_geog", table.c.geog, postgresql_using="gist")
    return table


def build_metadata(catalog: Catalog = COLLECTIONS) -> MetaData:
    """All layer tables (and the support tables) on a fresh MetaData."""
    metadata = MetaData(naming_convention=NAMING)
    for layer in catalog:
        layer_table(layer, metadata)
    Table(
        "school_zone_distances",
        metadata,
        Column("school_type", Text, primary_key=True),
        Column("distance_m", Double, nullable=False),
        CheckConstraint("distance_m > 0", name="distance_positive"),
        comment="学校限制距离(来自规则配置) / zone distance per school type, from the profile",
    )
    return metadata


METADATA = build_metadata()
"""The schema as declared; alembic migrations must match it (tested)."""


def table_of(layer: LayerSpec) -> Table:
    """The SQLAlchemy table of a declared layer."""
    return METADATA.tables[layer.table]
