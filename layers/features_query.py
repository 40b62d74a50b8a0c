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
    Boolean,
    ColumnElement,
    Connection,
    Integer,
    Select,
    Subquery,
    Table,
    TextClause,
    and_,
    bindparam,
    func,
    literal_column,
    or_,
    select,
    true,
    type_coerce,
    union_all,
)
from sqlalchemy.dialects.postgresql import ARRAY, aggregate_order_by
from sqlalchemy.sql.elements import Grouping, KeyedColumnElement

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


def _matches(
    columns: list[Any], where: tuple[Predicate, ...], any_of: tuple[Predicate, ...]
) -> Subquery:
    """The matching rows' `columns`: one scan per `any_of` clause, added up (UNION ALL)."""
    branches = [select(*columns).where(*where, clause) for clause in any_of] or [
        select(*columns).where(*where)
    ]
    return (union_all(*branches) if len(branches) > 1 else branches[0]).subquery("matches")


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
    matches = _matches(columns, where, any_of)
    every_id = func.array_agg(
        aggregate_order_by(matches.c.id, *_ordering(order_by, matches)), type_=ARRAY(BigInteger)
    )
    first, last = bindparam("page_first", type_=Integer), bindparam("page_last", type_=Integer)
    page_ids = every_id[first:last]
    return select(func.count().label("matched"), page_ids.label("ids")).select_from(matches)


WALK_PAGES_UP_TO = 1000
"""Filtered pages in id order ending at most this far in are read by a walk (`_walk_head`)."""
WALK_ROWS_PER_MATCH = 10
"""How many rows the walk may read per row of the page (and at least `WALK_ROWS_MIN`)."""
WALK_ROWS_MIN = 2000


def _walks(query: ItemsQuery) -> bool:
    """Whether the page is read by `_walk_head` (falling back to `_head` when short)."""
    return (
        bool(query.where or query.any_of)
        and all(name == "id" and not descending for name, descending in query.order_by)
        and query.offset + query.limit <= WALK_PAGES_UP_TO
    )


def _walk_head(
    table: Table, where: tuple[Predicate, ...], any_of: tuple[Predicate, ...]
) -> Select[Any]:
    """SELECT matched, ids for an early page in id order, without sorting every match.

    One pass over the matches gives their count and their smallest id; the page is then
    read along the primary key from that id, testing each row with the same clauses, for
    at most `page_walk` rows. Matches sit close together in id order in the common case
    (rows are loaded area by area: the 100 lamps of the benchmark's page are within 266
    ids of the first), so this reads a few hundred rows where `_head` sorts all 50,000
    matched ids (6-8 of its 28 ms). When the walk comes back short of the page the
    caller runs `_head` instead (`fetch_items`), so the page is always exact.
    """
    matches = _matches([table.c.id], where, any_of)
    span = select(func.count().label("matched"), func.min(matches.c.id).label("lo")).subquery(
        "span"
    )
    # Each clause in parentheses (text clauses are not grouped by SQLAlchemy), and the
    # whole test as a labelled boolean column (a text clause has no label of its own).
    exact = or_(*(Grouping(c) for c in any_of)) if any_of else true()
    ok = type_coerce(and_(*(Grouping(c) for c in where), exact), Boolean).label("ok")
    walk = (
        select(table.c.id, ok)
        .where(table.c.id >= span.c.lo)
        .order_by(table.c.id)
        .limit(bindparam("page_walk", type_=Integer))
        .correlate(span)
        .subquery("walk")
    )
    page = (
        select(walk.c.id)
        .where(walk.c.ok)
        .order_by(walk.c.id)
        .limit(bindparam("page_limit", type_=Integer))
        .offset(bindparam("page_offset", type_=Integer))
        .subquery("page")
    )
    ids = select(func.array_agg(aggregate_order_by(page.c.id, page.c.id)).label("ids")).lateral(
        "walked"
    )
    return select(span.c.matched, ids.c.ids).select_from(span.join(ids, true()))


def _page_params(query: ItemsQuery, walk: bool = False) -> dict[str, int]:
    if walk:
        rows = max(WALK_ROWS_MIN, WALK_ROWS_PER_MATCH * (query.offset + query.limit))
        return {"page_limit": query.limit, "page_offset": query.offset, "page_walk": rows}
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
    walk: bool = False,
) -> Select[Any]:
    heads = _walk_head(table, where, any_of) if walk else _head(table, order_by, where, any_of)
    head = heads.subquery("head")
    features = _page_features_sql(_table_sql(table), names, output)
    return select(
        head.c.matched,
        literal_column(features).label("features"),
        literal_column("coalesce(cardinality(head.ids), 0)").label("returned"),
    ).select_from(head)


_build_once = lru_cache(maxsize=256)(_build)
"""`_build` for queries without `where` clauses, whose `any_of` objects recur (bbox.py):
building and keying the statement per request cost ~1.5 ms of Python."""


def _statement(query: ItemsQuery, walk: bool = False) -> tuple[Select[Any], dict[str, Any]]:
    """The page statement and its parameter values (`walk`: by `_walk_head`).

    The features' JSON is built only for the rows of the page, in page order; the
    part around the page's ids is SQL text made once per layer and output.
    """
    shape = (query.table, tuple(query.order_by), _names(query), query.output)
    params = {**query.params, **_page_params(query, walk)}
    if query.where:
        return _build(*shape, tuple(query.where), tuple(query.any_of), walk), params
    return _build_once(*shape, (), tuple(query.any_of), walk), params


def items_statement(query: ItemsQuery) -> Select[Any]:
    """SELECT matched, the page's features as one JSON text, returned count (values bound):
    the statement `fetch_items` runs first."""
    statement, params = _statement(query, _walks(query))
    return statement.params(**params)


def fetch_items(conn: Connection, query: ItemsQuery) -> ItemsPage:
    """Run the page query: by a walk when `_walks`, again by sorting when it came short."""
    walk = _walks(query)
    statement, params = _statement(query, walk)
    row = conn.execute(statement, params).one()
    if walk and int(row.returned) < min(query.limit, max(0, int(row.matched) - query.offset)):
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
