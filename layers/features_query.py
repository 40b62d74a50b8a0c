"""Feature queries for the OGC API: one round trip builds the whole GeoJSON page.

PostgreSQL writes each Feature's JSON itself (`json_build_object`,
`ST_AsGeoJSON`) and counts the matches in the same statement, so Python only
joins a header to bytes it never parses: that is what keeps an items page fast.
Filters arrive as SQLAlchemy expressions over the layer's table; every value is
a bound parameter. Output CRSs are applied to the result, never to the indexed
column in a predicate.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    ColumnElement,
    Connection,
    Select,
    Table,
    Text,
    and_,
    cast,
    func,
    literal,
    select,
    true,
)
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.sql.elements import KeyedColumnElement

from layers.catalog import FieldKind, LayerSpec

# Properties every feature carries besides the catalog fields.
BASE_PROPERTIES = ("code",)
META_PROPERTIES = ("version", "created_at", "updated_at")


def property_names(spec: LayerSpec, table: Table) -> tuple[str, ...]:
    """Every property a feature of `spec` publishes, in a stable order."""
    names = [*BASE_PROPERTIES, *spec.field_names()]
    if "area_m2" in table.c:
        names.append("area_m2")
    return (*names, *META_PROPERTIES)


def time_column(spec: LayerSpec, table: Table) -> KeyedColumnElement[datetime]:
    """The column `datetime=` filters on: the layer's first time field, else updated_at."""
    name = spec.time_fields[0] if spec.time_fields else "updated_at"
    column: KeyedColumnElement[datetime] = table.c[name]
    return column


@dataclass(frozen=True)
class OutputCrs:
    """How geometries are written: SRID, axis swap, decimals."""

    srid: int = 4326
    swap_axes: bool = False
    decimals: int = 9


@dataclass(frozen=True)
class ItemsQuery:
    """One page of one layer: filters, order, page, output."""

    spec: LayerSpec
    table: Table
    where: Sequence[ColumnElement[bool]] = ()
    order_by: Sequence[tuple[str, bool]] = ()  # (property, descending)
    limit: int = 100
    offset: int = 0
    properties: Sequence[str] | None = None
    output: OutputCrs = field(default_factory=OutputCrs)


@dataclass(frozen=True)
class ItemsPage:
    """Features as JSON text (comma-joined), how many matched and were returned."""

    features_json: str
    matched: int
    returned: int


def _properties_object(table: Table, names: Sequence[str]) -> ColumnElement[object]:
    pairs: list[object] = []
    for name in names:
        pairs += [name, table.c[name]]
    return func.json_build_object(*pairs)


def _feature_json(query: ItemsQuery) -> ColumnElement[str]:
    table = query.table
    names = query.properties
    if names is None:
        names = property_names(query.spec, table)
    geometry = cast(
        func.ST_AsGeoJSON(_output_geom(table, query.output), query.output.decimals), JSON
    )
    feature = func.json_build_object(
        "type",
        "Feature",
        "id",
        table.c.id,
        "geometry",
        geometry,
        "properties",
        _properties_object(table, names),
    )
    return cast(feature, Text)


def _output_geom(table: Table, output: OutputCrs) -> ColumnElement[object]:
    geom: ColumnElement[object] = table.c.geom
    if output.srid != 4326:
        geom = func.ST_Transform(geom, output.srid)
    if output.swap_axes:
        geom = func.ST_FlipCoordinates(geom)
    return geom


def _where(query: ItemsQuery) -> ColumnElement[bool]:
    return and_(true(), *query.where)


def items_statement(query: ItemsQuery) -> Select[tuple[int | None, str | None, int]]:
    """SELECT matched, the page's features as one JSON text, returned count.

    The matches are read once, into a materialised CTE of ids and sort keys: the
    count and a top-N sort of the page both run over it (PostgreSQL would otherwise
    walk the primary key for `ORDER BY id` or scan the matches twice), and the
    features' JSON is built only for the rows of the page.
    """
    table = query.table
    keys = [name for name, _ in query.order_by if name != "id"]
    matches = (
        select(table.c.id, *(table.c[name] for name in keys))
        .where(_where(query))
        .cte("matches")
        .prefix_with("MATERIALIZED")
    )

    def ordering(source: Any) -> list[ColumnElement[Any]]:
        order: list[ColumnElement[Any]] = []
        for name, descending in query.order_by:
            column = source.c[name]
            order.append(column.desc().nulls_last() if descending else column.asc().nulls_last())
        order.append(source.c.id.asc())  # unique tie-breaker: pages neither repeat nor lose
        return order

    page = (
        select(matches)
        .order_by(*ordering(matches))
        .limit(query.limit)
        .offset(query.offset)
        .subquery("page")
    )
    matched = select(func.count()).select_from(matches).scalar_subquery()
    features = func.string_agg(
        _feature_json(query), aggregate_order_by(literal(","), *ordering(page))
    )
    return select(
        matched.label("matched"),
        features.label("features"),
        func.count(page.c.id).label("returned"),
    ).select_from(page.join(table, table.c.id == page.c.id))


def fetch_items(conn: Connection, query: ItemsQuery) -> ItemsPage:
    """Run the page query."""
    row = conn.execute(items_statement(query)).one()
    return ItemsPage(
        features_json=row.features or "", matched=int(row.matched), returned=row.returned
    )


def fetch_item(
    conn: Connection,
    spec: LayerSpec,
    table: Table,
    item_id: int,
    output: OutputCrs,
    properties: Sequence[str] | None = None,
) -> tuple[str, int] | None:
    """One feature's JSON text and its version (for the ETag), or None."""
    query = ItemsQuery(spec, table, properties=properties, output=output)
    row = conn.execute(
        select(_feature_json(query), table.c.version).where(table.c.id == item_id)
    ).first()
    if row is None:
        return None
    return str(row[0]), int(row[1])


def extent(conn: Connection, table: Table) -> tuple[float, float, float, float] | None:
    """Bounding box of a layer in lon/lat, or None when it is empty."""
    row = conn.execute(
        select(
            func.ST_XMin(func.ST_Extent(table.c.geom)),
            func.ST_YMin(func.ST_Extent(table.c.geom)),
            func.ST_XMax(func.ST_Extent(table.c.geom)),
            func.ST_YMax(func.ST_Extent(table.c.geom)),
        )
    ).one()
    if row[0] is None:
        return None
    return float(row[0]), float(row[1]), float(row[2]), float(row[3])


def json_kind(kind: FieldKind) -> str:
    """JSON Schema type of a catalog field kind."""
    return {
        FieldKind.INTEGER: "integer",
        FieldKind.FLOAT: "number",
        FieldKind.BOOLEAN: "boolean",
    }.get(kind, "string")
