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


def _ordering(query: ItemsQuery) -> list[ColumnElement[object]]:
    order: list[ColumnElement[object]] = []
    for name, descending in query.order_by:
        column = query.table.c[name]
        order.append(column.desc().nulls_last() if descending else column.asc().nulls_last())
    # A unique tie-breaker: pages neither repeat nor lose features.
    order.append(query.table.c.id.asc())
    return order


def _where(query: ItemsQuery) -> ColumnElement[bool]:
    return and_(true(), *query.where)


def items_statement(query: ItemsQuery) -> Select[tuple[int | None, str | None, int]]:
    """SELECT matched, the page's features as one JSON text, returned count.

    One pass over the matches: the page's ids come with `count(*) OVER ()` (the
    matches are read once for both the count and the order), and the features'
    JSON is built only for the rows of the page.
    """
    table = query.table
    ordering = _ordering(query)
    page = (
        select(
            table.c.id.label("id"),
            func.count().over().label("matched"),
            func.row_number().over(order_by=ordering).label("n"),
        )
        .where(_where(query))
        .order_by(*ordering)
        .limit(query.limit)
        .offset(query.offset)
        .subquery("page")
    )
    feature = _feature_json(query)
    return select(
        func.max(page.c.matched).label("matched"),
        func.string_agg(feature, aggregate_order_by(literal(","), page.c.n)).label("features"),
        func.count(page.c.id).label("returned"),
    ).select_from(page.join(table, table.c.id == page.c.id))


def fetch_items(conn: Connection, query: ItemsQuery) -> ItemsPage:
    """Run the page query (and a count only when the page is past the last match)."""
    row = conn.execute(items_statement(query)).one()
    matched = row.matched
    if matched is None:
        count = select(func.count()).select_from(query.table).where(_where(query))
        matched = int(conn.execute(count).scalar_one())
    return ItemsPage(features_json=row.features or "", matched=matched, returned=row.returned)


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
