"""OGC API - Features (Parts 1, 2, 3) over every published layer.

Paths are a contract: /, /conformance, /collections, /collections/{layer},
/collections/{layer}/items, /collections/{layer}/items/{id},
/collections/{layer}/queryables. JSON for GIS clients, HTML (Chinese by default)
for people. Layer ids and properties come from the catalog, so a new layer is
published by declaring it, not by writing routes.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import urlencode

import orjson
from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response
from sqlalchemy import ColumnElement, Engine, Table

from gis_api.ogc import crs as api_crs
from gis_api.ogc.bbox import BboxFilter, bbox_filter
from gis_api.ogc.negotiate import language, negotiate
from gis_api.ogc.params import (
    datetime_clause,
    parse_bbox,
    parse_limit,
    parse_names,
    parse_offset,
    parse_sortby,
    reject_unknown,
)
from gis_api.ogc.templates import render
from gis_api.problems import ApiProblem
from gis_api.routes.tiles import CONFORMANCE as TILES_CONFORMANCE
from layers.catalog import COLLECTIONS, FieldKind, GeometryKind, LayerSpec, UnknownLayer
from layers.cql2_sql import FilterError, filter_clause, parse_filter, queryables
from layers.features_query import (
    ItemsQuery,
    OutputCrs,
    extent,
    fetch_items,
    property_names,
    read_item,
    time_column,
)
from layers.tables import table_of

router = APIRouter(tags=["OGC API - Features"])

GEOJSON = "application/geo+json"
JSON = "application/json"
HTML = "text/html"
SCHEMA_JSON = "application/schema+json"
OPENAPI_JSON = "application/vnd.oai.openapi+json;version=3.0"
TILESETS_REL = "http://www.opengis.net/def/rel/ogc/1.0/tilesets-vector"

CONFORMANCE = (
    "http://www.opengis.net/spec/ogcapi-common-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-common-2/1.0/conf/collections",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/html",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
    "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/filter",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/features-filter",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables-query-parameters",
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-text",
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-json",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-cql2",
    "http://www.opengis.net/spec/cql2/1.0/conf/advanced-comparison-operators",
    "http://www.opengis.net/spec/cql2/1.0/conf/case-insensitive-comparison",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-spatial-functions",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-spatial-functions-plus",
    "http://www.opengis.net/spec/cql2/1.0/conf/spatial-functions",
    "http://www.opengis.net/spec/ogcapi-records-1/1.0/conf/sorting",
    *TILES_CONFORMANCE,  # declared by the tiles routes that implement them
)

COMMON_PARAMS = ("f", "lang")
ITEMS_PARAMS = (
    *COMMON_PARAMS,
    "limit",
    "offset",
    "bbox",
    "bbox-crs",
    "datetime",
    "properties",
    "sortby",
    "crs",
    "filter",
    "filter-lang",
    "filter-crs",
)
ITEM_PARAMS = (*COMMON_PARAMS, "crs", "properties")
EXTENT_TTL_S = 30.0


def _reads(request: Request) -> Engine:
    """The autocommit engine: each read here is one statement, one round trip."""
    engine: Engine = request.app.state.read_engine
    return engine


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def _json(body: Any, media_type: str = JSON, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), media_type=media_type, headers=headers)


def _spec(layer: str) -> LayerSpec:
    try:
        return COLLECTIONS.get(layer)
    except UnknownLayer as exc:
        raise ApiProblem(404, str(exc)) from exc


def _title(spec: LayerSpec, lang: str) -> str:
    return spec.zh if lang == "zh" else spec.en


def _gk_epsg(request: Request) -> int:
    return int(request.app.state.settings.city_gk_epsg)


def _crs(request: Request, name: str) -> api_crs.ApiCrs:
    try:
        return api_crs.resolve(request.query_params.get(name), _gk_epsg(request))
    except api_crs.UnsupportedCrs as exc:
        raise ApiProblem(400, f"{name}: {exc}") from exc


def _output(crs: api_crs.ApiCrs) -> OutputCrs:
    # 9 decimals of a degree is 0.1 mm; 4 decimals of a metre likewise.
    return OutputCrs(crs.srid, crs.swap_axes, 9 if crs.geographic else 4)


def _extent(request: Request, spec: LayerSpec) -> tuple[float, float, float, float] | None:
    """Layer extent, cached briefly on the app (it costs a scan of the layer)."""
    cache: dict[str, tuple[float, Any]] = request.app.state.extent_cache
    hit = cache.get(spec.id)
    if hit and time.monotonic() - hit[0] < EXTENT_TTL_S:
        return hit[1]  # type: ignore[no-any-return]
    with _reads(request).connect() as conn:
        box = extent(conn, table_of(spec))
    cache[spec.id] = (time.monotonic(), box)
    return box


@router.get("/conformance", summary="Conformance classes")
def conformance(request: Request) -> Response:
    """The OGC conformance classes this service implements."""
    reject_unknown(request.query_params, COMMON_PARAMS)
    body = {"conformsTo": list(CONFORMANCE)}
    if negotiate(request) == "html":
        return render(request, "conformance.html", {"classes": CONFORMANCE})
    return _json(body)


def collection_document(request: Request, spec: LayerSpec, lang: str) -> dict[str, Any]:
    """The JSON description of one collection."""
    base = _base(request)
    url = f"{base}/collections/{spec.id}"
    box = _extent(request, spec)
    doc: dict[str, Any] = {
        "id": spec.id,
        "title": _title(spec, lang),
        "description": f"{spec.zh} / {spec.en}"
        + (f" (derived from {spec.derived_from})" if spec.derived_from else ""),
        "itemType": "feature",
        "crs": [c.uri for c in api_crs.supported(_gk_epsg(request))],
        "storageCrs": api_crs.CRS84,
        "links": [
            {"href": url, "rel": "self", "type": JSON, "title": "this collection"},
            {"href": f"{url}?f=html", "rel": "alternate", "type": HTML, "title": "HTML"},
            {"href": f"{url}/items", "rel": "items", "type": GEOJSON, "title": "items"},
            {"href": f"{url}/items?f=html", "rel": "items", "type": HTML, "title": "items"},
            {
                "href": f"{url}/queryables",
                "rel": "http://www.opengis.net/def/rel/ogc/1.0/queryables",
                "type": SCHEMA_JSON,
                "title": "queryables",
            },
            {"href": f"{url}/tiles", "rel": TILESETS_REL, "type": JSON, "title": "vector tiles"},
        ],
    }
    if box is not None:
        doc["extent"] = {"spatial": {"bbox": [list(box)], "crs": api_crs.CRS84}}
    return doc


@router.get("/collections", summary="The published layers")
def collections(request: Request) -> Response:
    """Every layer and derived layer, with links to items, queryables and tiles."""
    reject_unknown(request.query_params, COMMON_PARAMS)
    lang = language(request)
    base = _base(request)
    docs = [collection_document(request, spec, lang) for spec in COLLECTIONS]
    if negotiate(request) == "html":
        return render(request, "collections.html", {"collections": docs})
    return _json(
        {
            "links": [
                {"href": f"{base}/collections", "rel": "self", "type": JSON},
                {"href": f"{base}/collections?f=html", "rel": "alternate", "type": HTML},
            ],
            "collections": docs,
            "crs": [c.uri for c in api_crs.supported(_gk_epsg(request))],
        }
    )


@router.get("/collections/{layer}", summary="One layer")
def collection(request: Request, layer: str = Path(description="Layer id")) -> Response:
    """A layer's description."""
    reject_unknown(request.query_params, COMMON_PARAMS)
    spec = _spec(layer)
    doc = collection_document(request, spec, language(request))
    if negotiate(request) == "html":
        return render(request, "collection.html", {"c": doc, "spec": spec})
    return _json(doc)


@router.get("/collections/{layer}/queryables", summary="Queryable properties")
def layer_queryables(request: Request, layer: str = Path(description="Layer id")) -> Response:
    """JSON Schema of what `filter`, `sortby` and property parameters may name."""
    reject_unknown(request.query_params, COMMON_PARAMS)
    spec = _spec(layer)
    schema = queryables(spec, f"{_base(request)}/collections/{spec.id}/queryables")
    if negotiate(request) == "html":
        return render(request, "queryables.html", {"spec": spec, "schema": schema})
    return _json(schema, SCHEMA_JSON)


def _equality(spec: LayerSpec, table: Table, name: str, raw: str) -> ColumnElement[bool]:
    """`?status=lit`: a property equal to a value, typed by the catalog."""
    if name == "code":
        return table.c.code == raw
    kind = spec.field(name).kind
    value: Any = raw
    try:
        if kind is FieldKind.INTEGER:
            value = int(raw)
        elif kind is FieldKind.FLOAT:
            value = float(raw)
        elif kind is FieldKind.BOOLEAN:
            value = {"true": True, "false": False}[raw.lower()]
        elif kind is FieldKind.DATE:
            value = date.fromisoformat(raw)
    except (ValueError, KeyError) as exc:
        raise ApiProblem(400, f"{name}={raw!r} is not a valid {kind.value}") from exc
    clause: ColumnElement[bool] = table.c[name] == value
    return clause


def _page_links(
    request: Request, offset: int, limit: int, returned: int, matched: int
) -> list[dict[str, str]]:
    base = f"{_base(request)}{request.url.path}"
    params = [(k, v) for k, v in request.query_params.multi_items() if k not in ("offset", "f")]

    def link(rel: str, new_offset: int | None, media: str, f: str | None = None) -> dict[str, str]:
        query = list(params)
        if new_offset:
            query.append(("offset", str(new_offset)))
        if f:
            query.append(("f", f))
        href = f"{base}?{urlencode(query)}" if query else base
        return {"href": href, "rel": rel, "type": media}

    links = [
        link("self", offset, GEOJSON),
        link("alternate", offset, HTML, "html"),
        {
            "href": f"{_base(request)}/collections/{request.path_params['layer']}",
            "rel": "collection",
            "type": JSON,
        },
    ]
    if offset + returned < matched:
        links.append(link("next", offset + limit, GEOJSON))
    if offset > 0:
        links.append(link("prev", max(offset - limit, 0), GEOJSON))
    return links


def _selected_properties(request: Request, names: Sequence[str]) -> list[str] | None:
    text = request.query_params.get("properties")
    if text is None:
        return None
    return parse_names(text, "property", names)


@router.get(
    "/collections/{layer}/items",
    summary="Features of a layer",
    response_class=Response,
    responses={200: {"content": {GEOJSON: {}, HTML: {}}}},
)
def items(
    request: Request,
    layer: str = Path(description="Layer id"),
    limit: int | None = Query(None, ge=1, le=10_000, description="Page size (default 100)"),
    offset: int | None = Query(None, ge=0, description="Features to skip"),
    bbox: str | None = Query(None, description="minx,miny,maxx,maxy in bbox-crs axis order"),
    bbox_crs: str | None = Query(None, alias="bbox-crs"),
    datetime_: str | None = Query(None, alias="datetime", description="RFC 3339 instant/interval"),
    properties: str | None = Query(None, description="Comma list of properties to return"),
    sortby: str | None = Query(None, description="+name,-code"),
    crs: str | None = Query(None, description="Output CRS URI"),
    filter_: str | None = Query(None, alias="filter", description="CQL2 filter"),
    filter_lang: str | None = Query(None, alias="filter-lang", description="cql2-text|cql2-json"),
    filter_crs: str | None = Query(None, alias="filter-crs"),
) -> Response:
    """A page of features, filtered, sorted and in the asked CRS."""
    spec = _spec(layer)
    table = table_of(spec)
    names = property_names(spec, table)
    queryable = ("code", *spec.field_names())
    reject_unknown(request.query_params, (*ITEMS_PARAMS, *queryable))
    for name in set(request.query_params.keys()):
        if len(request.query_params.getlist(name)) > 1:
            raise ApiProblem(400, f"query parameter {name!r} is given more than once")
    out_crs = _crs(request, "crs")
    where: list[ColumnElement[bool]] = []
    box = BboxFilter(())
    if bbox is not None:
        box = bbox_filter(
            table,
            parse_bbox(bbox),
            _crs(request, "bbox-crs"),
            points=spec.geometry is GeometryKind.POINT,
        )
    elif bbox_crs is not None:
        raise ApiProblem(400, "bbox-crs given without bbox")
    if datetime_ is not None:
        where.append(datetime_clause(time_column(spec, table), datetime_))
    if filter_ is not None:
        try:
            where.append(
                filter_clause(
                    parse_filter(filter_, filter_lang), spec, table, _crs(request, "filter-crs")
                )
            )
        except FilterError as exc:
            raise ApiProblem(400, f"filter: {exc}") from exc
    elif filter_lang is not None or filter_crs is not None:
        raise ApiProblem(400, "filter-lang or filter-crs given without filter")
    for name in queryable:
        value = request.query_params.get(name)
        if value is not None:
            where.append(_equality(spec, table, name, value))
    page_size = parse_limit(request.query_params.get("limit"))
    start = parse_offset(request.query_params.get("offset"))
    query = ItemsQuery(
        spec,
        table,
        where=where,
        order_by=parse_sortby(sortby, names) if sortby else (),
        limit=page_size,
        offset=start,
        properties=_selected_properties(request, names),
        output=_output(out_crs),
        any_of=box.clauses,
        params=box.params,
    )
    with _reads(request).connect() as conn:
        page = fetch_items(conn, query)
    links = _page_links(request, start, page_size, page.returned, page.matched)
    headers = {"Content-Crs": f"<{out_crs.uri}>"}
    if negotiate(request) == "html":
        features = orjson.loads(f"[{page.features_json}]")
        return render(
            request,
            "items.html",
            {"spec": spec, "features": features, "page": page, "links": links, "names": names},
            headers=headers,
        )
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    head = orjson.dumps(
        {
            "type": "FeatureCollection",
            "numberMatched": page.matched,
            "numberReturned": page.returned,
            "timeStamp": stamp,
            "links": links,
        }
    )
    body = head[:-1] + b',"features":[' + page.features_json.encode() + b"]}"
    return Response(body, media_type=GEOJSON, headers=headers)


@router.get(
    "/collections/{layer}/items/{item_id}",
    summary="One feature",
    response_class=Response,
    responses={200: {"content": {GEOJSON: {}, HTML: {}}}},
)
async def item(
    request: Request,
    layer: str = Path(description="Layer id"),
    item_id: str = Path(description="Feature id"),
    crs: str | None = Query(None, description="Output CRS URI"),
    properties: str | None = Query(None),
) -> Response:
    """One feature, with an ETag from its version.

    `async`, on the app's async read connections: a thread-pool hop and SQLAlchemy's
    connection handling were a sixth of what this request costs the server.
    """
    spec = _spec(layer)
    table = table_of(spec)
    reject_unknown(request.query_params, ITEM_PARAMS)
    if not item_id.isdigit() or len(item_id) > 18:
        raise ApiProblem(404, f"no feature {item_id!r} in {spec.id}: ids are integers")
    out_crs = _crs(request, "crs")
    selected = _selected_properties(request, property_names(spec, table))
    async with request.app.state.read_pool.connection() as conn:
        found = await read_item(conn, spec, table, int(item_id), _output(out_crs), selected)
    if found is None:
        raise ApiProblem(404, f"no feature {item_id} in {spec.id}")
    feature_json, version = found
    headers = {"Content-Crs": f"<{out_crs.uri}>", "ETag": f'"{spec.id}-{item_id}-v{version}"'}
    base = _base(request)
    links = [
        {"href": f"{base}/collections/{spec.id}/items/{item_id}", "rel": "self", "type": GEOJSON},
        {
            "href": f"{base}/collections/{spec.id}/items/{item_id}?f=html",
            "rel": "alternate",
            "type": HTML,
        },
        {"href": f"{base}/collections/{spec.id}", "rel": "collection", "type": JSON},
    ]
    if negotiate(request) == "html":
        return render(
            request,
            "item.html",
            {"spec": spec, "feature": orjson.loads(feature_json), "links": links},
            headers=headers,
        )
    body = feature_json.encode()[:-1] + b',"links":' + orjson.dumps(links) + b"}"
    return Response(body, media_type=GEOJSON, headers=headers)


def landing_document(request: Request) -> dict[str, Any]:
    """The OGC landing page (JSON)."""
    base = _base(request)
    return {
        "title": "civic-gis 文明城市创建 GIS",
        "description": "OGC API Features and Tiles for civilized-city inspection layers",
        "links": [
            {"href": f"{base}/", "rel": "self", "type": JSON, "title": "this document"},
            {"href": f"{base}/?f=html", "rel": "alternate", "type": HTML, "title": "HTML"},
            {"href": f"{base}/api", "rel": "service-desc", "type": OPENAPI_JSON, "title": "API"},
            {"href": f"{base}/api.html", "rel": "service-doc", "type": HTML, "title": "API docs"},
            {
                "href": f"{base}/conformance",
                "rel": "conformance",
                "type": JSON,
                "title": "conformance",
            },
            {"href": f"{base}/collections", "rel": "data", "type": JSON, "title": "collections"},
            {"href": f"{base}/tiles", "rel": TILESETS_REL, "type": JSON, "title": "vector tiles"},
        ],
    }
