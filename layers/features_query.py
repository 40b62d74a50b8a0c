"""Feature queries for the OGC API: one round trip builds the whole GeoJSON page.

PostgreSQL writes each Feature's JSON itself (`json_build_object`,
`ST_AsGeoJSON`) and counts the matches in the same statement, so Python only
joins a header to bytes it never parses: that is what keeps an items page fast.
Filters arrive as SQLAlchemy expressions over the layer's table; every value is
a bound parameter. Output CRSs are applied to the result, never to the indexed
column in a predicate.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any

from psycopg import AsyncConnection
from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Connection,
    Integer,
    Select,
    Table,
    TextClause,
    bindparam,
    func,
    literal_column,
    select,
    union_all,
)
from sqlalchemy.dialects.postgresql import ARRAY, aggregate_order_by
from sqlalchemy.sql.elements import KeyedColumnElement

from layers.catalog import FieldKind, LayerSpec

Predicate = ColumnElement[bool] | TextClause
"""A row filter: an expression, or SQL text with bound parameters."""

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
    """One page of one layer: filters, order, page, output.

    A row matches when every `where` clause holds and, if `any_of` is given, one of
    its clauses does. The `any_of` clauses must exclude each other (no row satisfies
    two): each is read by its own scan and the results are added up, not de-duplicated.
    A query without `where` clauses is built into a statement once per shape (table,
    order, properties, output, `any_of` objects) and only its parameters change.
    """

    spec: LayerSpec
    table: Table
    where: Sequence[ColumnElement[bool]] = ()
    order_by: Sequence[tuple[str, bool]] = ()  # (property, descending)
    limit: int = 100
    offset: int = 0
    properties: Sequence[str] | None = None
    output: OutputCrs = field(default_factory=OutputCrs)
    any_of: Sequence[Predicate] = ()
    params: Mapping[str, Any] = field(default_factory=dict)
    """Values of the named parameters of the `where` and `any_of` clauses given as SQL text."""


@dataclass(frozen=True)
class ItemsPage:
    """Features as JSON text (comma-joined), how many matched and were returned."""

    features_json: str
    matched: int
    returned: int


# --- the Feature JSON, as SQL text -----------------------------------------------------------
# Written once per (table, properties, output) rather than built from SQLAlchemy constructs
# per request: the names come from the catalog, never from a request, and a 30-argument
# json_build_object costs ~1 ms of Python to build and key for the statement cache.


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _table_sql(table: Table) -> str:
    name = _ident(table.name)
    return name if table.schema is None else f"{_ident(table.schema)}.{name}"


def _geometry_sql(alias: str, output: OutputCrs) -> str:
    geom = f"{alias}.geom"
    if output.srid != 4326:
        geom = f"ST_Transform({geom}, {int(output.srid)})"
    if output.swap_axes:
        geom = f"ST_FlipCoordinates({geom})"
    return geom


@lru_cache(maxsize=512)
def feature_sql(alias: str, names: tuple[str, ...], output: OutputCrs) -> str:
    """SQL of one row of `alias` as GeoJSON Feature text with the properties `names`."""
    pairs = ", ".join(f"{_string(n)}, {alias}.{_ident(n)}" for n in names)
    geometry = f"ST_AsGeoJSON({_geometry_sql(alias, output)}, {int(output.decimals)})::json"
    return (
        f"json_build_object('type', 'Feature', 'id', {alias}.id, 'geometry', {geometry},"
        f" 'properties', json_build_object({pairs}))::text"
    )


def _names(query: ItemsQuery) -> tuple[str, ...]:
    if query.properties is None:
        return property_names(query.spec, query.table)
    return tuple(query.properties)


# --- the items page ------------------------------------------------------------------------


Order = tuple[tuple[str, bool], ...]


def _ordering(order_by: Order, source: Any) -> list[ColumnElement[Any]]:
    order: list[ColumnElement[Any]] = []
    for name, descending in order_by:
        column = source.c[name]
        order.append(column.desc().nulls_last() if descending else column.asc().nulls_last())
    order.append(source.c.id.asc())  # unique tie-breaker: pages neither repeat nor lose
    return order


def _head(
    table: Table, order_by: Order, where: tuple[Predicate, ...], any_of: tuple[Predicate, ...]
) -> Select[Any]:
    """SELECT matched, ids: the number of matches and the page's ids in page order.

    With a filter, the matches are read once (one scan per `any_of` clause) and both
    numbers come from that one pass: a count, and the ids sorted into an array that
    is sliced to the page. Sorting 50,000 ids costs less than reading the rows twice
    or materialising them for a top-N sort, and it cannot go wrong the way
    `ORDER BY id LIMIT 100` over the primary key can when the matching ids sit far
    into the table (a bbox of 50,000 lamps whose first id is 91,747: 100 ms instead
    of 25). Without any filter the count and an index-ordered LIMIT are separate
    (the primary key serves `ORDER BY id`; an array of every id would not).
    The page's bounds are the parameters `page_*` (`_page_params`).
    """
    keys = [name for name, _ in order_by if name != "id"]
    columns = [table.c.id, *(table.c[name] for name in keys)]
    if not where and not any_of:
        page = (
            select(*columns)
            .order_by(*_ordering(order_by, table))
            .limit(bindparam("page_limit", type_=Integer))
            .offset(bindparam("page_offset", type_=Integer))
            .subquery("page")
        )
        ids = func.array_agg(aggregate_order_by(page.c.id, *_ordering(order_by, page)))
        return select(
            select(func.count()).select_from(table).scalar_subquery().label("matched"),
            select(ids).scalar_subquery().label("ids"),
        )
    branches = [select(*columns).where(*where, clause) for clause in any_of] or [
        select(*columns).where(*where)
    ]
    matches = (union_all(*branches) if len(branches) > 1 else branches[0]).subquery("matches")
    every_id = func.array_agg(
        aggregate_order_by(matches.c.id, *_ordering(order_by, matches)), type_=ARRAY(BigInteger)
    )
    first, last = bindparam("page_first", type_=Integer), bindparam("page_last", type_=Integer)
    page_ids = every_id[first:last]
    return select(func.count().label("matched"), page_ids.label("ids")).select_from(matches)


def _page_params(query: ItemsQuery) -> dict[str, int]:
    if not query.where and not query.any_of:
        return {"page_limit": query.limit, "page_offset": query.offset}
    return {"page_first": query.offset + 1, "page_last": query.offset + query.limit}


@lru_cache(maxsize=512)
def _page_features_sql(table: str, names: tuple[str, ...], output: OutputCrs) -> str:
    """The features of `head.ids`, in page order, as one comma-joined JSON text."""
    feature = feature_sql("f", names, output)
    return (
        f"(SELECT string_agg({feature}, ',' ORDER BY page.ord)"  # noqa: S608 - catalog names
        " FROM unnest(head.ids) WITH ORDINALITY AS page(id, ord)"
        f" JOIN {table} AS f ON f.id = page.id)"
    )


def _build(
    table: Table,
    order_by: Order,
    names: tuple[str, ...],
    output: OutputCrs,
    where: tuple[Predicate, ...],
    any_of: tuple[Predicate, ...],
) -> Select[Any]:
    head = _head(table, order_by, where, any_of).subquery("head")
    features = _page_features_sql(_table_sql(table), names, output)
    return select(
        head.c.matched,
        literal_column(features).label("features"),
        literal_column("coalesce(cardinality(head.ids), 0)").label("returned"),
    ).select_from(head)


_build_once = lru_cache(maxsize=256)(_build)
"""`_build` for queries without `where` clauses, whose `any_of` objects recur (bbox.py):
building and keying the statement per request cost ~1.5 ms of Python."""


def _statement(query: ItemsQuery) -> tuple[Select[Any], dict[str, Any]]:
    """The page statement and its parameter values.

    The features' JSON is built only for the rows of the page, in page order; the
    part around the page's ids is SQL text made once per layer and output.
    """
    shape = (query.table, tuple(query.order_by), _names(query), query.output)
    params = {**query.params, **_page_params(query)}
    if query.where:
        return _build(*shape, tuple(query.where), tuple(query.any_of)), params
    return _build_once(*shape, (), tuple(query.any_of)), params


def items_statement(query: ItemsQuery) -> Select[Any]:
    """SELECT matched, the page's features as one JSON text, returned count (values bound)."""
    statement, params = _statement(query)
    return statement.params(**params)


def fetch_items(conn: Connection, query: ItemsQuery) -> ItemsPage:
    """Run the page query."""
    statement, params = _statement(query)
    row = conn.execute(statement, params).one()
    return ItemsPage(
        features_json=row.features or "", matched=int(row.matched), returned=int(row.returned)
    )


@lru_cache(maxsize=512)
def item_sql(table: str, names: tuple[str, ...], output: OutputCrs) -> str:
    """One feature's JSON text and version by id (psycopg `%(id)s` parameter)."""
    feature = feature_sql("f", names, output)
    return f"SELECT {feature}, f.version FROM {table} AS f WHERE f.id = %(id)s"  # noqa: S608


def _item_sql(
    spec: LayerSpec, table: Table, output: OutputCrs, properties: Sequence[str] | None
) -> str:
    names = property_names(spec, table) if properties is None else tuple(properties)
    return item_sql(_table_sql(table), names, output)


def fetch_item(
    conn: Connection,
    spec: LayerSpec,
    table: Table,
    item_id: int,
    output: OutputCrs,
    properties: Sequence[str] | None = None,
) -> tuple[str, int] | None:
    """One feature's JSON text and its version (for the ETag), or None."""
    driver = conn.connection.driver_connection  # one short statement: no SQLAlchemy layer
    assert driver is not None
    row = driver.execute(_item_sql(spec, table, output, properties), {"id": item_id}).fetchone()
    return None if row is None else (str(row[0]), int(row[1]))


async def read_item(
    conn: AsyncConnection[Any],
    spec: LayerSpec,
    table: Table,
    item_id: int,
    output: OutputCrs,
    properties: Sequence[str] | None = None,
) -> tuple[str, int] | None:
    """`fetch_item` on an async psycopg connection (the read endpoint's, no thread hop)."""
    cursor = await conn.execute(_item_sql(spec, table, output, properties), {"id": item_id})
    row = await cursor.fetchone()
    return None if row is None else (str(row[0]), int(row[1]))


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
