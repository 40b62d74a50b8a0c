"""Offline: every script, stylesheet, font and icon of the map is served by the app itself."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from gis_api.app import create_app
from gis_api.settings import Settings
from map_ui import assets
from map_ui.browser import is_local
from map_ui.page import PageContext, render_map_page, render_print_page
from map_ui.register import GridInfo, Problems, Register, RegisterRow

URL = re.compile(r"""(?:https?:)?//[^\s"'<>()]+""")
CDN_HOSTS = (
    "cdn.jsdelivr.net",
    "code.jquery.com",
    "cdnjs.cloudflare.com",
    "unpkg.com",
    "bootstrapcdn",
)
GRID = GridInfo(
    id=1,
    code="231005001001001",
    name="立新社区第1网格",
    level="grid",
    officer="王丹",
    officer_phone=None,
    unit=None,
    geometry={
        "type": "Polygon",
        "coordinates": [[[129.6, 44.58], [129.61, 44.58], [129.61, 44.59], [129.6, 44.58]]],
    },
    bounds=(129.6, 44.58, 129.61, 44.59),
)


def _pages() -> dict[str, str]:
    register = Register(
        [RegisterRow("street_lamps", "路灯", "L-1", None, "lit", "亮灯", "#fdd835")],
        {"street_lamps": 1},
    )
    return {
        "map": render_map_page(PageContext(lang="zh", path="/map"), (129.6, 44.58, 129.7, 44.6)),
        "map_en": render_map_page(PageContext(lang="en", path="/map"), None),
        "grid": render_map_page(PageContext(lang="zh", path="/map/grids/x"), None, GRID),
        "print": render_print_page(
            PageContext(lang="zh", path="/p"),
            GRID,
            register,
            Problems(),
            date(2026, 11, 27),
        ),
    }


def _external(text: str) -> list[str]:
    return [u for u in URL.findall(text) if not is_local(u if "://" in u else "http:" + u)]


@pytest.mark.parametrize("name", ["map", "map_en", "grid", "print"])
def test_rendered_pages_name_no_outside_host(name: str) -> None:
    html = _pages()[name]
    assert _external(html) == []
    for host in CDN_HOSTS:
        assert host not in html


def test_pages_load_exactly_the_declared_local_assets() -> None:
    html = _pages()["map"]
    scripts = re.findall(r'<script src="([^"]+)"', html)
    sheets = re.findall(r'<link rel="stylesheet" href="([^"]+)"', html)
    assert scripts == [assets.url(p) for p in assets.SCRIPTS]
    assert sheets == [assets.url(p) for p in assets.STYLESHEETS]
    for path in (*assets.SCRIPTS, *assets.STYLESHEETS):
        assert assets.resolve(path) is not None, path
    assert assets.missing() == []


def test_a_basemap_is_only_what_the_settings_name() -> None:
    plain = render_map_page(PageContext(lang="zh", path="/map"), None)
    assert "L.tileLayer(" not in plain
    ctx = PageContext(lang="zh", path="/map", basemap_url="http://127.0.0.1:9/{z}/{x}/{y}.png")
    assert "http://127.0.0.1:9/{z}/{x}/{y}.png" in render_map_page(ctx, None)


def test_our_own_scripts_and_styles_fetch_nothing_from_outside() -> None:
    folder = Path(assets.ROOTS["civic"].directory)
    for path in folder.iterdir():
        text = path.read_text(encoding="utf-8")
        urls = [u for u in URL.findall(text) if "www.w3.org/2000/svg" not in u]
        assert urls == [], path.name
        assert "@import" not in text and "@font-face" not in text, path.name


def test_leaflet_stylesheet_refers_only_to_its_own_images() -> None:
    css = assets.resolve("leaflet/leaflet.css")
    assert css is not None
    for ref in re.findall(r"url\(([^)]+)\)", css.read_text()):
        ref = ref.strip("'\"")
        assert not ref.startswith(("http", "//")), ref
        if not ref.startswith(("data:", "#default#")):  # #default#VML: old-IE behaviour
            assert assets.resolve(f"leaflet/{ref}") is not None, ref


@pytest.fixture(scope="module")
def client(city_url: str) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(database_url=city_url, auth_public_reads=True))) as client:
        yield client


def test_the_app_serves_every_asset_with_its_type(client: TestClient) -> None:
    for path in (*assets.SCRIPTS, *assets.STYLESHEETS, "leaflet/images/layers.png"):
        response = client.get(assets.url(path))
        assert response.status_code == 200, path
        assert response.headers["content-type"].split(";")[0] in (
            "text/javascript",
            "text/css",
            "image/png",
        )
        assert "max-age" in response.headers["cache-control"]


@pytest.mark.parametrize(
    "path",
    [
        "civic/../register.py",
        "civic/%2e%2e/register.py",
        "leaflet/../../../../etc/passwd",
        "nowhere/leaflet.js",
        "civic/",
        "vectorgrid/../package.json",
    ],
)
def test_the_static_route_serves_nothing_else(client: TestClient, path: str) -> None:
    assert client.get(f"/map/static/{path}").status_code == 404
