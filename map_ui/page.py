"""The map pages, built with folium and served offline.

folium builds the Leaflet map, one layer object per published layer (drawn from the
vector tiles by `civic_map.js`), the layer control and an optional basemap; our page
templates (a branca `Figure` with our own Jinja template) place it beside the tool
panel and the legend, or on the A4 sheet of one grid. folium's default scripts and
stylesheets point at CDNs (TRAPS.md), so every map gets `assets.SCRIPTS`/`STYLESHEETS`
instead, and nothing else from folium (no plugins, no branca colormaps) is used.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path
from typing import Any, Literal

import folium
import orjson
from branca.element import Figure
from folium.map import Layer, LayerControl
from folium.template import Template
from jinja2 import Environment, FileSystemLoader, select_autoescape

from layers.catalog import CATALOG, COLLECTIONS, GeometryKind
from map_ui import assets
from map_ui.overview import OVERVIEW_BELOW_ZOOM, has_overview
from map_ui.register import GridInfo, Problems, Register, problem_subject
from map_ui.styles import Lang, LayerStyle, layer_styles, style_config
from map_ui.text import TEXT

Bounds = tuple[float, float, float, float]
BasemapCrs = Literal["WGS84", "GCJ02"]

TEMPLATES = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)

SEARCH_FIRST = ("grids", "street_lamps", "buildings")
"""Layers searched by code, most asked-for first (the first hit wins)."""

DEFAULT_CENTRE = (44.58, 129.60)
"""Where an empty map opens (lat, lon): the demo district; any data re-centres it."""


@dataclass(frozen=True)
class PageContext:
    """What every map page needs to know about the request and the settings."""

    lang: Lang
    path: str
    root: str = ""
    basemap_url: str | None = None
    basemap_crs: BasemapCrs = "WGS84"
    city_gk_epsg: int = 4552

    def url(self, path: str) -> str:
        """An absolute path under the app's root path."""
        return f"{self.root}{path}"

    def with_lang(self, path: str) -> str:
        """A page path in this page's language."""
        return path if self.lang == "zh" else f"{path}?lang={self.lang}"

    def other_lang_url(self) -> str:
        """This page in the other language."""
        return self.url(self.path if self.lang == "en" else f"{self.path}?lang=en")


def script_json(value: Any) -> str:
    """JSON safe inside a <script> element (no `</script>` can close it early)."""
    return orjson.dumps(value).decode().replace("</", "<\\/")


def urls(ctx: PageContext) -> dict[str, str]:
    """The API paths the map script calls (templates use {layer}, {id}, {rule}, {code})."""
    return {
        "tiles": ctx.url("/collections/{layer}/tiles/WebMercatorQuad/{z}/{x}/{y}"),
        "items": ctx.url("/collections/{layer}/items"),
        "item": ctx.url("/collections/{layer}/items/{id}"),
        "checks": ctx.url("/checks"),
        "check": ctx.url("/checks/{rule}"),
        "scorecards": ctx.url("/scorecards?level=grid"),
        "uploads": ctx.url("/uploads"),
        "grid_map": ctx.url("/map/grids/{code}"),
        "overview": ctx.url("/map/overview/{layer}"),
        "print": ctx.url("/map/grids/{code}/print"),
        "login": ctx.url("/login"),
        "logout": ctx.url("/auth/logout"),
        "me": ctx.url("/auth/me"),
    }


def search_layers() -> list[str]:
    """Every editable layer, the usual ones first."""
    rest = [spec.id for spec in CATALOG if spec.id not in SEARCH_FIRST]
    return [*SEARCH_FIRST, *rest]


def crs_options(ctx: PageContext) -> list[tuple[str, str]]:
    """The coordinate systems an upload may declare (values `data.crs.parse_crs` accepts)."""
    zh = ctx.lang == "zh"
    gk = ctx.city_gk_epsg
    return [
        ("EPSG:4326", "WGS-84 (GPS, 北斗)" if zh else "WGS-84 (GPS, BeiDou)"),
        ("GCJ-02", "GCJ-02 (高德、腾讯)" if zh else "GCJ-02 (AMap, Tencent)"),
        ("BD-09", "BD-09 (百度)" if zh else "BD-09 (Baidu)"),
        ("EPSG:4490", "CGCS2000 经纬度" if zh else "CGCS2000 lon/lat"),
        (f"EPSG:{gk}", f"CGCS2000 高斯-克吕格 EPSG:{gk}" if zh else f"CGCS2000 GK EPSG:{gk}"),
    ]


def swatch(style: LayerStyle) -> str:
    """The legend swatch class of a layer's geometry (outline-only layers get a ring)."""
    if style.geometry is GeometryKind.POINT:
        return "civic-point"
    if style.geometry is GeometryKind.LINESTRING:
        return "civic-line"
    return "civic-polygon" if style.symbol().get("fill", True) else "civic-outline"


# --- folium elements ------------------------------------------------------------------


class CatalogTileLayer(Layer):
    """A published layer drawn from its vector tiles by `civicMap.tileLayer`.

    Added to the map by `civicMap.init` after the initial view is set (show=False here),
    so no tile is fetched for a view the page is about to leave.
    """

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        var {{ this.get_name() }} = civicMap.tileLayer({{ this.layer_id|tojson }});
        {% endmacro %}
        """
    )

    def __init__(self, layer_id: str, name: str) -> None:
        super().__init__(name=name, overlay=True, control=True, show=False)
        self._name = "CatalogTileLayer"
        self.layer_id = layer_id


class MapInit(folium.MacroElement):
    """`civicMap.init(map, layerControl)`: the last script of the page."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        civicMap.init({{ this.map_name }}, {{ this.control_name }});
        {% endmacro %}
        """
    )

    def __init__(self, map_name: str, control_name: str) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self._name = "MapInit"
        self.map_name = map_name
        self.control_name = control_name


class MapPage(Figure):
    """A branca figure rendered with one of our page templates."""

    def __init__(self, template: str, context: dict[str, Any]) -> None:
        super().__init__()
        self._template = TEMPLATES.get_template(template)
        self.context = context


def offline_map(ctx: PageContext, centre: tuple[float, float], print_mode: bool) -> folium.Map:
    """A folium map whose scripts and stylesheets are all served by the app."""
    m = folium.Map(
        location=list(centre),
        zoom_start=13,
        tiles=None,
        control_scale=False,
        zoom_control=not print_mode,
        max_zoom=22,
        attribution_control=ctx.basemap_url is not None,
    )
    # Instance attributes: the class lists are shared by every map in the process.
    m.default_js = [(Path(p).stem, ctx.url(assets.url(p))) for p in assets.SCRIPTS]
    m.default_css = [(Path(p).stem + "_css", ctx.url(assets.url(p))) for p in assets.STYLESHEETS]
    if ctx.basemap_url:
        folium.TileLayer(
            tiles=ctx.basemap_url,
            attr=TEXT[ctx.lang]["basemap"],
            name=TEXT[ctx.lang]["basemap"],
            overlay=False,
            control=True,
            max_zoom=22,
            max_native_zoom=18,
        ).add_to(m)
    return m


def _build(ctx: PageContext, centre: tuple[float, float], print_mode: bool) -> folium.Map:
    m = offline_map(ctx, centre, print_mode)
    for style in layer_styles(COLLECTIONS):
        CatalogTileLayer(style.layer, style.label(ctx.lang)).add_to(m)
    control_name = "null"
    if not print_mode:
        control = LayerControl(position="topright", collapsed=False, autoZIndex=False)
        control.add_to(m)
        control_name = control.get_name()
    MapInit(m.get_name(), control_name).add_to(m)
    return m


def _config(
    ctx: PageContext,
    bounds: Bounds | None,
    grid: GridInfo | None,
    print_mode: bool,
    evidence: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    grid_view = None
    if grid is not None:
        grid_view = {"code": grid.code, "name": grid.name, "geometry": grid.geometry}
    return {
        "lang": ctx.lang,
        "text": TEXT[ctx.lang],
        "layers": style_config(ctx.lang),
        "urls": urls(ctx),
        "view": {"bounds": list(bounds) if bounds else None, "grid": grid_view},
        "scope": grid.scope if grid is not None else "all",
        "gcj": ctx.basemap_crs == "GCJ02",
        "search_layers": search_layers(),
        "print": print_mode,
        "evidence": evidence or [],
        "overview_layers": [spec.id for spec in COLLECTIONS if has_overview(spec)],
        "overview_below_zoom": OVERVIEW_BELOW_ZOOM,
    }


def _centre(bounds: Bounds | None) -> tuple[float, float]:
    if bounds is None:
        return DEFAULT_CENTRE
    west, south, east, north = bounds
    return ((south + north) / 2, (west + east) / 2)


def render_map_page(ctx: PageContext, bounds: Bounds | None, grid: GridInfo | None = None) -> str:
    """`/map` (bounds of the jurisdiction) or `/map/grids/{code}` (one unit)."""
    view = grid.bounds if grid is not None else bounds
    m = _build(ctx, _centre(view), print_mode=False)
    t = TEXT[ctx.lang]
    title = t["title"] if grid is None else f"{t['title']} · {grid.name} {grid.code}"
    page = MapPage(
        "map_page.html",
        {
            "lang": ctx.lang,
            "t": t,
            "title": title,
            "config_json": script_json(_config(ctx, bounds, grid, print_mode=False)),
            "styles": layer_styles(COLLECTIONS),
            "swatch": swatch,
            "crs_options": crs_options(ctx),
            "other_lang_url": ctx.other_lang_url(),
            "grid": grid,
            "whole_map_url": ctx.url(ctx.with_lang("/map")),
            "print_url": ctx.url(ctx.with_lang(f"/map/grids/{grid.code}/print")) if grid else None,
        },
    )
    page.add_child(m)
    html: str = page.render()
    return html


def render_print_page(
    ctx: PageContext, grid: GridInfo, register: Register, problems: Problems, today: date
) -> str:
    """`/map/grids/{code}/print`: A4 landscape sheet with map, legend and register."""
    m = _build(ctx, _centre(grid.bounds), print_mode=True)
    evidence = [r.as_config() for r in problems.rules if r.features]
    # The sheet's legend explains what the sheet shows: the grid levels, and of each layer
    # the values its assets in this grid hold (an A4 aside has no room for the rest).
    styles = [
        s
        if s.layer == "grids"
        else replace(s, entries=tuple(e for e in s.entries if e.key in register.values(s.layer)))
        for s in layer_styles(COLLECTIONS)
        if s.layer == "grids" or s.layer in register.counts
    ]
    page = MapPage(
        "print_page.html",
        {
            "lang": ctx.lang,
            "t": TEXT[ctx.lang],
            "config_json": script_json(_config(ctx, None, grid, True, evidence)),
            "styles": styles,
            "swatch": swatch,
            "grid": grid,
            "register": register,
            "problems": problems,
            "labels": {s.layer: s.label(ctx.lang) for s in layer_styles(COLLECTIONS)},
            "today": today.isoformat(),
            "level_label": _level_label(grid.level, ctx.lang),
            "subject": problem_subject,
        },
    )
    page.add_child(m)
    html: str = page.render()
    return html


def _level_label(level: str, lang: Lang) -> str:
    for choice in CATALOG.get("grids").field("level").choices:
        if choice.key == level:
            return choice.zh if lang == "zh" else choice.en
    return level
