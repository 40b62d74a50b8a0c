"""Signing in to the map in a real browser, on a service whose reads are closed (the default).

Debian's chromium, the tiny city, every outside request blocked (tests/map_ui/conftest.py).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from gis_api.app import create_app
from gis_api.auth.users import add_user
from gis_api.settings import Settings
from map_ui.browser import serving
from tests.map_ui.conftest import MapPage
from tests.map_ui.test_browser import PAINTED, OpenMap, gpx_file
from tests.tiny_city import GRID_WEST

PASSWORD = "lamps at dusk 2026"


@pytest.fixture(scope="package")
def closed_server(city_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The app with reads closed: nothing but /health, /api and the login without a user."""
    settings = Settings(
        database_url=city_url,
        auth_public_reads=False,
        state_dir=tmp_path_factory.mktemp("closed_state"),
    )
    with serving(create_app(settings)) as base:
        yield base


@pytest.fixture
def inspector(city_engine: Any) -> str:
    """A new inspector of the west grid, with a password (names are unique per test)."""
    name = f"巡查员{uuid.uuid4().hex[:6]}"
    with city_engine.begin() as conn:
        add_user(conn, name, "inspector", [GRID_WEST], password=PASSWORD)
    return name


def at_login(page: MapPage) -> dict[str, list[str]]:
    """The login page is showing; returns its query (next, reason, lang)."""
    page.page.wait_for_selector("#login-username", timeout=15_000)
    url = urlsplit(page.page.url)
    assert url.path == "/login", page.page.url
    return parse_qs(url.query)


def log_in(page: MapPage, name: str, password: str) -> None:
    page.page.fill("#login-username", name)
    page.page.fill("#login-password", password)
    page.page.click("#login button[type=submit]")


def test_an_inspector_signs_in_to_see_her_grid_uploads_and_signs_out(
    open_map: OpenMap, closed_server: str, inspector: str, artifacts: Path
) -> None:
    """王丹 opens her grid's map: she is asked to log in (in Chinese), mistypes her password,
    logs in, lands on the grid she asked for with her lamps drawn and her name shown,
    uploads a GPX without being asked again, and logs out."""
    page = open_map(closed_server)
    page.page.goto(f"{closed_server}/map/grids/{GRID_WEST}")
    query = at_login(page)
    assert query["next"] == [f"/map/grids/{GRID_WEST}"]
    assert page.page.locator("#login-message").inner_text() == "请先登录"
    assert page.page.locator("label[for=login-password]").inner_text() == "密码"
    page.shot(artifacts, "login_zh")

    log_in(page, inspector, "wrong password")
    page.page.wait_for_function(
        "() => document.getElementById('login-message').textContent === '用户名或密码错误'",
        timeout=15_000,
    )
    assert urlsplit(page.page.url).path == "/login"

    log_in(page, inspector, PASSWORD)
    page.page.wait_for_url(f"{closed_server}/map/grids/{GRID_WEST}", timeout=15_000)
    page.page.wait_for_function("window.civicMapReady === true", timeout=30_000)
    assert page.evaluate(PAINTED, "street_lamps") > 0
    page.page.wait_for_selector("#civic-logout", timeout=15_000)
    assert page.page.locator("#civic-user").inner_text().startswith(f"{inspector} · 巡查员")
    cookies = {c["name"]: c for c in page.page.context.cookies()}
    session = cookies["civic_gis_session"]
    assert session["httpOnly"] is True and session["sameSite"] == "Strict"
    assert page.evaluate("() => document.cookie") == ""  # the script cannot read it

    page.page.click("#civic-upload-toggle")
    page.page.set_input_files("#civic-upload input[type=file]", files=[gpx_file()])
    page.page.select_option("#civic-upload select[name=crs]", "EPSG:4326")
    page.page.click("#civic-upload button[type=submit]")
    page.page.wait_for_function(
        "() => /·|HTTP/.test(document.querySelector('.civic-upload-status').textContent)",
        timeout=30_000,
    )
    assert '"points_accepted": 2' in page.page.locator(".civic-upload-report").inner_text()

    page.page.click("#civic-logout")
    query = at_login(page)
    assert query["reason"] == ["logout"]
    assert page.page.locator("#login-message").inner_text() == "已退出登录"
    assert "civic_gis_session" not in {c["name"] for c in page.page.context.cookies()}
    assert page.evaluate("() => sessionStorage.getItem('civic-gis-token')") is None
    page.page.goto(f"{closed_server}/map")
    at_login(page)


def test_when_the_session_ends_on_the_map_the_next_request_asks_to_log_in_again(
    open_map: OpenMap, closed_server: str, inspector: str
) -> None:
    """The JWT lives 15 minutes: once it is gone, the map's next data request (here an
    upload) brings the login page back, which then returns to the same map."""
    page = open_map(closed_server)
    page.page.goto(f"{closed_server}/login?lang=en")
    assert page.page.locator("label[for=login-username]").inner_text() == "User name"
    log_in(page, inspector, PASSWORD)
    page.page.wait_for_url(f"{closed_server}/map", timeout=15_000)
    page.page.wait_for_function("window.civicMapReady === true", timeout=30_000)

    page.page.context.clear_cookies()
    page.evaluate("() => sessionStorage.removeItem('civic-gis-token')")
    page.page.click("#civic-upload-toggle")
    page.page.set_input_files("#civic-upload input[type=file]", files=[gpx_file()])
    page.page.click("#civic-upload button[type=submit]")
    query = at_login(page)
    assert query["next"] == ["/map"]
    assert query["reason"] == ["required"]

    log_in(page, inspector, PASSWORD)
    page.page.wait_for_url(f"{closed_server}/map", timeout=15_000)
    page.page.wait_for_function("window.civicMapReady === true", timeout=30_000)
