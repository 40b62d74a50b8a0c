"""OGC API - Tiles (vector tiles, MVT) of every published layer, plus TileJSON 3.0.

Paths (one tile matrix set, WebMercatorQuad):

- `/tileMatrixSets`, `/tileMatrixSets/WebMercatorQuad`
- `/collections/{layer}/tiles`, `/collections/{layer}/tiles/WebMercatorQuad`,
  `/collections/{layer}/tiles/WebMercatorQuad/{z}/{x}/{y}`, `.../tilejson.json`
- `/tiles`, `/tiles/WebMercatorQuad`, `/tiles/WebMercatorQuad/{z}/{x}/{y}`,
  `/tiles/WebMercatorQuad/tilejson.json` (one tileset, one MVT layer per collection)

Tile paths use XYZ order, `{z}/{x}/{y}` with x = column and y = row from the top,
as Leaflet, MapLibre and TileJSON expect. OGC names them {tileMatrix}/{tileRow}/{tileCol}
and puts the row first; our OGC `item` link template is therefore
`{tileMatrix}/{tileCol}/{tileRow}`, which clients such as GDAL fill by name.

An empty tile is `204 No Content`, which OGC API - Tiles permits and which GDAL's
OGCAPI/MVT readers and Leaflet.VectorGrid (its fetch is `ok`, an empty buffer decodes to
no layers) treat as an empty tile. Tiles carry a content-hash ETag and are cached
publicly for 60 s; `If-None-Match` gives 304.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import cache
from hashlib import sha256
from typing import Annotated, Any

import morecantile
import orjson
from fastapi import APIRouter, Path, Request
from fastapi.responses import Response
from sqlalchemy import Engine

from gis_api.ogc.params import reject_unknown
from gis_api.problems import ApiProblem
from layers import tiles
from layers.catalog import COLLECTIONS, LayerSpec, UnknownLayer

router = APIRouter(tags=["OGC API - Tiles"])

TMS_ID = "WebMercatorQuad"
TMS = morecantile.tms.get(TMS_ID)
JSON = "application/json"
MVT = "application/vnd.mapbox-vector-tile"
CACHE_CONTROL = "public, max-age=60"
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
CRS_3857 = "http://www.opengis.net/def/crs/EPSG/0/3857"
REL_TILING_SCHEME = "http://www.opengis.net/def/rel/ogc/1.0/tiling-scheme"
REL_GEODATA = "http://www.opengis.net/def/rel/ogc/1.0/geodata"
MERCATOR_MAX_LAT = 85.0511287798066

CONFORMANCE = (
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/tileset",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/tilesets-list",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/geodata-tilesets",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/dataset-tilesets",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/mvt",
    "http://www.opengis.net/spec/tms/2.0/conf/json-tilematrixset",
)
"""The OGC API - Tiles conformance classes these routes implement (for /conformance)."""

DOC_PARAMS = ("f",)
TILE_PARAMS: tuple[str, ...] = ()
_INTEGER = re.compile(r"-?[0-9]+")

TmsId = Annotated[str, Path(description="Tile matrix set id; only WebMercatorQuad is offered")]
LayerId = Annotated[str, Path(description="Layer id (a collection)")]
# Strings, so that a non-integer is a 400 naming the parameter (checked in _index).
Zoom = Annotated[str, Path(description="Zoom level = OGC tileMatrix (0-24)")]
Column = Annotated[str, Path(description="Column from the west = OGC tileCol (XYZ x)")]
Row = Annotated[str, Path(description="Row from the north = OGC tileRow (XYZ y)")]


# --- helpers -------------------------------------------------------------------------


def _reject_unknown(request: Request, allowed: Iterable[str]) -> None:
    """400 naming every query parameter this endpoint does not know; `f` must be json."""
    reject_unknown(request.query_params, allowed)
    f = request.query_params.get("f")
    if f is not None and f != "json":
        raise ApiProblem(400, f"f: only 'json' is offered here, not {f!r}")


def _json(body: Any) -> Response:
    return Response(orjson.dumps(body), media_type=JSON)


def _reads(request: Request) -> Engine:
    """The autocommit engine: a tile or an extent is one statement, one round trip."""
    engine: Engine = request.app.state.read_engine
    return engine


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def _spec(layer: str) -> LayerSpec:
    try:
        return COLLECTIONS.get(layer)
    except UnknownLayer as exc:
        raise ApiProblem(404, str(exc)) from exc


def _check_tms(tms: str) -> None:
    if tms != TMS_ID:
        raise ApiProblem(404, f"tile matrix set {tms!r} is not offered; use {TMS_ID}")


def _index(name: str, raw: str) -> int:
    """A tile index from the path: 400 when not an integer."""
    if not _INTEGER.fullmatch(raw):
        raise ApiProblem(400, f"{name} must be an integer, got {raw!r}")
    # Past 10 digits it is outside every matrix anyway; keep it small for the database.
    return int(raw) if len(raw.lstrip("-")) <= 10 else 2**40


def _tile_index(z: str, x: str, y: str) -> tuple[int, int, int]:
    """Validated z, x (column), y (row): 404 when outside WebMercatorQuad."""
    zi, xi, yi = _index("z", z), _index("x", x), _index("y", y)
    if not (TMS.minzoom <= zi <= TMS.maxzoom) or not TMS.is_valid(morecantile.Tile(xi, yi, zi)):
        raise ApiProblem(
            404,
            f"tile {z}/{x}/{y} is outside {TMS_ID}: zoom {TMS.minzoom}-{TMS.maxzoom}, "
            "column and row 0 to 2^zoom - 1",
        )
    return zi, xi, yi


def _etag_matches(header: str | None, etag: str) -> bool:
    """RFC 9110 If-None-Match: weak comparison, `*` matches any."""
    if not header:
        return False
    candidates = [c.strip() for c in header.split(",")]
    return "*" in candidates or any(c.removeprefix("W/") == etag for c in candidates)


async def _read_tile(
    request: Request, specs: tuple[LayerSpec, ...], z: int, x: int, y: int
) -> bytes:
    """The tile from the database, on the app's async read connections (no thread hop)."""
    async with request.app.state.read_pool.connection() as conn:
        return await tiles.read_tile(conn, specs, z, x, y)


def _tile_response(request: Request, content: bytes) -> Response:
    if not content:
        return Response(status_code=204, headers={"Cache-Control": CACHE_CONTROL})
    # SHA-256 (hardware-accelerated in OpenSSL): 60 µs on a 70 KB tile, blake2b 130 µs.
    etag = f'"{sha256(content).hexdigest()[:32]}"'
    headers = {"ETag": etag, "Cache-Control": CACHE_CONTROL}
    if _etag_matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    return Response(content, media_type=MVT, headers=headers)


def _clamp(box: tiles.Bounds | None) -> list[float]:
    """Lon/lat bounds inside the Web Mercator square (the world when there is no data)."""
    if box is None:
        return [-180.0, -MERCATOR_MAX_LAT, 180.0, MERCATOR_MAX_LAT]
    west, south, east, north = box
    lat = MERCATOR_MAX_LAT
    return [west, max(south, -lat), east, min(north, lat)]


def _tms_link(base: str) -> dict[str, str]:
    return {
        "rel": REL_TILING_SCHEME,
        "type": JSON,
        "href": f"{base}/tileMatrixSets/{TMS_ID}",
        "title": f"{TMS_ID} definition",
    }


def _title(specs: tuple[LayerSpec, ...]) -> str:
    if len(specs) == 1:
        return f"{specs[0].zh} / {specs[0].en}"
    return "全部图层 / all layers"


# --- documents -----------------------------------------------------------------------


def _tilesets(base: str, tiles_url: str, specs: tuple[LayerSpec, ...]) -> dict[str, Any]:
    """OGC tilesets list: the one WebMercatorQuad vector tileset."""
    return {
        "links": [{"rel": "self", "type": JSON, "href": tiles_url}],
        "tilesets": [
            {
                "title": _title(specs),
                "dataType": "vector",
                "crs": CRS_3857,
                "tileMatrixSetURI": TMS.uri,
                "links": [
                    {
                        "rel": "self",
                        "type": JSON,
                        "href": f"{tiles_url}/{TMS_ID}",
                        "title": f"{TMS_ID} vector tileset",
                    },
                    _tms_link(base),
                ],
            }
        ],
    }


def _layer_entry(base: str, spec: LayerSpec) -> dict[str, Any]:
    return {
        "id": spec.id,
        "title": f"{spec.zh} / {spec.en}",
        "dataType": "vector",
        "geometryDimension": tiles.geometry_dimension(spec),
        "featureType": spec.id,
        "minTileMatrix": "0",
        "maxTileMatrix": str(tiles.MAX_ZOOM),
        "propertiesSchema": {"type": "object", "properties": tiles.attribute_schema(spec)},
        "links": [{"rel": REL_GEODATA, "type": JSON, "href": f"{base}/collections/{spec.id}"}],
    }


def _tileset(
    base: str, tiles_url: str, specs: tuple[LayerSpec, ...], box: tiles.Bounds | None
) -> dict[str, Any]:
    """OGC 2D tileset metadata of WebMercatorQuad with the MVT item template."""
    url = f"{tiles_url}/{TMS_ID}"
    doc: dict[str, Any] = {
        "title": _title(specs),
        "description": tiles.thinning_rule(),
        "dataType": "vector",
        "crs": CRS_3857,
        "tileMatrixSetURI": TMS.uri,
        "links": [
            {"rel": "self", "type": JSON, "href": url, "title": "this tileset"},
            _tms_link(base),
            {
                "rel": "item",
                "type": MVT,
                "href": f"{url}/{{tileMatrix}}/{{tileCol}}/{{tileRow}}",
                "templated": True,
                "title": "Mapbox vector tile (path order z/x/y: column before row)",
            },
            {
                "rel": "describedby",
                "type": JSON,
                "href": f"{url}/tilejson.json",
                "title": "TileJSON 3.0",
            },
        ],
        "layers": [_layer_entry(base, spec) for spec in specs],
    }
    if box is not None:
        west, south, east, north = _clamp(box)
        doc["boundingBox"] = {"lowerLeft": [west, south], "upperRight": [east, north], "crs": CRS84}
    return doc


def _tilejson(
    tiles_url: str, specs: tuple[LayerSpec, ...], box: tiles.Bounds | None
) -> dict[str, Any]:
    """TileJSON 3.0.0 with absolute XYZ tile URLs and the catalog's fields."""
    bounds = _clamp(box)
    center_zoom = 14 if box is not None else 0
    return {
        "tilejson": "3.0.0",
        "name": _title(specs),
        "description": tiles.thinning_rule(),
        "scheme": "xyz",
        "tiles": [f"{tiles_url}/{TMS_ID}/{{z}}/{{x}}/{{y}}"],
        "minzoom": 0,
        "maxzoom": tiles.MAX_ZOOM,
        "bounds": bounds,
        "center": [(bounds[0] + bounds[2]) / 2, (bounds[1] + bounds[3]) / 2, center_zoom],
        "vector_layers": [
            {
                "id": spec.id,
                "description": f"{spec.zh} / {spec.en}",
                "minzoom": 0,
                "maxzoom": tiles.MAX_ZOOM,
                "fields": tiles.tilejson_fields(spec),
            }
            for spec in specs
        ],
    }


@cache
def _tms_document() -> dict[str, Any]:
    """WebMercatorQuad as OGC TMS 2.0 JSON, plus the TMS 1.0 keys GDAL <= 3.6 reads.

    GDAL 3.6 (Debian 12) only parses `supportedCRS`/`tileMatrix`/`topLeftCorner`;
    newer GDAL and other clients read the 2.0 keys. The two sets do not collide.
    """
    doc: dict[str, Any] = TMS.model_dump(mode="json", exclude_none=True)
    doc.update(
        {
            "type": "TileMatrixSetType",
            "identifier": TMS.id,
            "supportedCRS": CRS_3857,
            "tileMatrix": [
                {
                    "type": "TileMatrixType",
                    "identifier": m.id,
                    "scaleDenominator": m.scaleDenominator,
                    "topLeftCorner": list(m.pointOfOrigin),
                    "tileWidth": m.tileWidth,
                    "tileHeight": m.tileHeight,
                    "matrixWidth": m.matrixWidth,
                    "matrixHeight": m.matrixHeight,
                }
                for m in TMS.tileMatrices
            ],
        }
    )
    return doc


# --- tile matrix sets ----------------------------------------------------------------


@router.get("/tileMatrixSets", summary="Tile matrix sets offered")
def tile_matrix_sets(request: Request) -> Response:
    """The one tiling scheme offered, WebMercatorQuad."""
    _reject_unknown(request, DOC_PARAMS)
    base = _base(request)
    url = f"{base}/tileMatrixSets"
    return _json(
        {
            "links": [{"rel": "self", "type": JSON, "href": url}],
            "tileMatrixSets": [
                {
                    "id": TMS.id,
                    "title": TMS.title,
                    "uri": TMS.uri,
                    "crs": CRS_3857,
                    "links": [
                        {"rel": "self", "type": JSON, "href": f"{url}/{TMS_ID}"},
                        _tms_link(base),
                    ],
                }
            ],
        }
    )


@router.get("/tileMatrixSets/{tms}", summary="A tile matrix set definition")
def tile_matrix_set(request: Request, tms: TmsId) -> Response:
    """The WebMercatorQuad definition (from morecantile)."""
    _reject_unknown(request, DOC_PARAMS)
    _check_tms(tms)
    return _json(_tms_document())


# --- all layers ----------------------------------------------------------------------


@router.get("/tiles", summary="Vector tilesets of all layers")
def dataset_tilesets(request: Request) -> Response:
    """The tileset holding every published layer."""
    _reject_unknown(request, DOC_PARAMS)
    base = _base(request)
    return _json(_tilesets(base, f"{base}/tiles", tuple(COLLECTIONS)))


@router.get("/tiles/{tms}", summary="Vector tileset of all layers")
def dataset_tileset(request: Request, tms: TmsId) -> Response:
    """Tileset metadata of all layers in WebMercatorQuad."""
    _reject_unknown(request, DOC_PARAMS)
    _check_tms(tms)
    specs = tuple(COLLECTIONS)
    box = tiles.extent(_reads(request), specs)
    base = _base(request)
    return _json(_tileset(base, f"{base}/tiles", specs, box))


@router.get("/tiles/{tms}/tilejson.json", summary="TileJSON of all layers")
def dataset_tilejson(request: Request, tms: TmsId) -> Response:
    """TileJSON 3.0 of the all-layers tileset (one vector layer per collection)."""
    _reject_unknown(request, DOC_PARAMS)
    _check_tms(tms)
    specs = tuple(COLLECTIONS)
    box = tiles.extent(_reads(request), specs)
    return _json(_tilejson(f"{_base(request)}/tiles", specs, box))


@router.get(
    "/tiles/{tms}/{z}/{x}/{y}",
    summary="A vector tile of all layers",
    responses={200: {"content": {MVT: {}}}, 204: {"description": "empty tile"}},
)
async def dataset_tile(request: Request, tms: TmsId, z: Zoom, x: Column, y: Row) -> Response:
    """One MVT holding one layer per collection that has features in the tile."""
    _reject_unknown(request, TILE_PARAMS)
    _check_tms(tms)
    zi, xi, yi = _tile_index(z, x, y)
    return _tile_response(request, await _read_tile(request, tuple(COLLECTIONS), zi, xi, yi))


# --- one layer -----------------------------------------------------------------------


@router.get("/collections/{layer}/tiles", summary="Vector tilesets of a layer")
def layer_tilesets(request: Request, layer: LayerId) -> Response:
    """The layer's tileset list (one: WebMercatorQuad)."""
    _reject_unknown(request, DOC_PARAMS)
    spec = _spec(layer)
    base = _base(request)
    return _json(_tilesets(base, f"{base}/collections/{spec.id}/tiles", (spec,)))


@router.get("/collections/{layer}/tiles/{tms}", summary="Vector tileset of a layer")
def layer_tileset(request: Request, layer: LayerId, tms: TmsId) -> Response:
    """Tileset metadata of one layer in WebMercatorQuad."""
    _reject_unknown(request, DOC_PARAMS)
    spec = _spec(layer)
    _check_tms(tms)
    box = tiles.extent(_reads(request), (spec,))
    base = _base(request)
    return _json(_tileset(base, f"{base}/collections/{spec.id}/tiles", (spec,), box))


@router.get("/collections/{layer}/tiles/{tms}/tilejson.json", summary="TileJSON of a layer")
def layer_tilejson(request: Request, layer: LayerId, tms: TmsId) -> Response:
    """TileJSON 3.0 of one layer, bounds from its features."""
    _reject_unknown(request, DOC_PARAMS)
    spec = _spec(layer)
    _check_tms(tms)
    box = tiles.extent(_reads(request), (spec,))
    return _json(_tilejson(f"{_base(request)}/collections/{spec.id}/tiles", (spec,), box))


@router.get(
    "/collections/{layer}/tiles/{tms}/{z}/{x}/{y}",
    summary="A vector tile of a layer",
    responses={200: {"content": {MVT: {}}}, 204: {"description": "empty tile"}},
)
async def layer_tile(
    request: Request,
    layer: LayerId,
    tms: TmsId,
    z: Zoom,
    x: Column,
    y: Row,
) -> Response:
    """One MVT of one layer (points aggregated into cells below zoom 14)."""
    _reject_unknown(request, TILE_PARAMS)
    spec = _spec(layer)
    _check_tms(tms)
    zi, xi, yi = _tile_index(z, x, y)
    return _tile_response(request, await _read_tile(request, (spec,), zi, xi, yi))
