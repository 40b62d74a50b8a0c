"""The map pages (`/map`, `/map/grids/{code}`, its print sheet) and their static files.

Everything a map page loads is served from here (`/map/static/...`), never a CDN:
the service runs on closed government networks.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Path, Request
from fastapi.responses import FileResponse, HTMLResponse, Response
from sqlalchemy import Engine

from gis_api.ogc.negotiate import language
from gis_api.ogc.params import reject_unknown
from gis_api.problems import ApiProblem
from layers import tiles
from layers.catalog import COLLECTIONS, GRIDS, UnknownLayer
from map_ui import assets
from map_ui.overview import OverviewCache, has_overview
from map_ui.page import PageContext, render_map_page, render_print_page
from map_ui.register import GridInfo, find_grid, grid_register, open_problems
from map_ui.styles import DEFAULT_VISIBLE

router = APIRouter(tags=["map"])
CHINA = ZoneInfo("Asia/Shanghai")
PAGE_PARAMS = ("lang",)
GridCode = Annotated[
    str, Path(description="Code of a grid, community, street or district (15 digits)")
]


def _context(request: Request) -> PageContext:
    """Language, paths and basemap settings of a page request; 503 if scripts are missing."""
    reject_unknown(request.query_params, PAGE_PARAMS)
    missing = assets.missing()
    if missing:
        raise ApiProblem(503, "map scripts are not installed: " + "; ".join(missing))
    settings = request.app.state.settings
    return PageContext(
        lang=language(request),
        path=request.url.path,
        root=request.scope.get("root_path", ""),
        basemap_url=settings.map_basemap_url,
        basemap_crs=settings.map_basemap_crs,
        city_gk_epsg=settings.city_gk_epsg,
    )


def _grid(engine: Engine, code: str) -> GridInfo:
    with engine.connect() as conn:
        grid = find_grid(conn, code)
    if grid is None:
        raise ApiProblem(404, f"no grid with code {code!r}")
    return grid


@router.get("/map", response_class=HTMLResponse, summary="The map of the jurisdiction")
def city_map(request: Request) -> HTMLResponse:
    """Every layer and check on one map (中文; `?lang=en` for English)."""
    ctx = _context(request)
    bounds = tiles.extent(request.app.state.engine, (GRIDS,))
    _prefetch_overviews(request)
    return HTMLResponse(render_map_page(ctx, bounds))


@router.get("/map/grids/{code}", response_class=HTMLResponse, summary="The map of one grid")
def grid_map(request: Request, code: GridCode) -> HTMLResponse:
    """The map zoomed to one unit, checks scoped to it."""
    ctx = _context(request)
    grid = _grid(request.app.state.engine, code)
    return HTMLResponse(render_map_page(ctx, None, grid))


@router.get(
    "/map/grids/{code}/print", response_class=HTMLResponse, summary="一格一图: a grid's sheet"
)
def grid_sheet(request: Request, code: GridCode) -> HTMLResponse:
    """A4 landscape: the grid's map, legend, scale, north arrow, officer and register."""
    ctx = _context(request)
    engine = request.app.state.engine
    grid = _grid(engine, code)
    with engine.connect() as conn:
        register = grid_register(conn, grid, ctx.lang)
    problems = open_problems(engine, request.app.state.profile, grid)
    today = datetime.now(CHINA).date()
    return HTMLResponse(render_print_page(ctx, grid, register, problems, today))


def _overviews(request: Request) -> OverviewCache:
    """The app's overview cache (made on first use: the app factory knows nothing of it)."""
    cache: OverviewCache | None = getattr(request.app.state, "map_overviews", None)
    if cache is None:
        cache = OverviewCache()
        request.app.state.map_overviews = cache
    return cache


def _prefetch_overviews(request: Request) -> None:
    """The city view draws the default point layers from their overviews: start building
    them now, while the browser loads the page's scripts."""
    shown = [spec for spec in COLLECTIONS if spec.id in DEFAULT_VISIBLE and has_overview(spec)]
    _overviews(request).prefetch(request.app.state.engine, shown)


@router.get("/map/overview/{layer}", summary="A point layer per grid cell (city zoom)")
def layer_overview(request: Request, layer: str) -> Response:
    """GeoJSON: per grid cell, the count, the worst or usual status and the centroid."""
    reject_unknown(request.query_params, ())
    try:
        spec = COLLECTIONS.get(layer)
    except UnknownLayer as exc:
        raise ApiProblem(404, str(exc)) from exc
    if not has_overview(spec):
        raise ApiProblem(404, f"{layer} has no overview: only point layers in grids have one")
    body = _overviews(request).get(request.app.state.engine, spec)
    headers = {"Cache-Control": "public, max-age=60"}
    return Response(body, media_type="application/geo+json", headers=headers)


@router.get("/map/static/{path:path}", include_in_schema=False)
def static_file(path: str) -> FileResponse:
    """A script, stylesheet or image of the map (see map_ui.assets)."""
    found = assets.resolve(path)
    if found is None:
        raise ApiProblem(404, f"no map asset {path!r}")
    headers = {"Cache-Control": "public, max-age=3600"}
    return FileResponse(found, media_type=assets.media_type(found), headers=headers)
