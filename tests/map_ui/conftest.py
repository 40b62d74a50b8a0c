"""The map tests' world: the tiny city in a database of its own, served on loopback,
and Debian's chromium (never `playwright install`) with every non-loopback request blocked.

The database is separate from the session's because other modules empty the session
database between tests while the map server here stays up for the whole package.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from data.importer import import_file
from gis_api import cluster
from gis_api.app import create_app
from gis_api.database import make_engine
from gis_api.settings import Settings
from layers import migrate
from layers.catalog import CATALOG
from map_ui.browser import CHROMIUM, NetworkLog, guard_network, launch, serving
from tests.tiny_city import tiny_city, write_geojson

playwright_api = pytest.importorskip("playwright.sync_api")

ARTIFACTS = Path(__file__).parents[2] / "test-artifacts" / "map_ui"


@pytest.fixture(scope="package")
def city_url(
    cluster_config: cluster.ClusterConfig, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A migrated database holding exactly the tiny city."""
    name = f"civic_gis_map_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    url = cluster.create_database(cluster_config, name)
    engine = make_engine(url)
    migrate.upgrade(engine)
    folder = tmp_path_factory.mktemp("tiny_city")
    city = tiny_city()
    for spec in CATALOG:
        import_file(engine, write_geojson(city[spec.id], folder / f"{spec.id}.geojson"), spec)
    engine.dispose()
    yield url
    cluster.drop_database(cluster_config, name)


@pytest.fixture(scope="package")
def city_engine(city_url: str) -> Iterator[Engine]:
    engine = make_engine(city_url)
    yield engine
    engine.dispose()


@pytest.fixture(scope="package")
def server(city_url: str) -> Iterator[str]:
    """The app on a free loopback port (no basemap: the default)."""
    with serving(create_app(Settings(database_url=city_url, auth_public_reads=True))) as base:
        yield base


@pytest.fixture(scope="package")
def gcj_server(city_url: str) -> Iterator[str]:
    """The app with a GCJ-02 basemap, whose tiles the app itself serves (a loopback URL)."""
    settings = Settings(
        database_url=city_url,
        auth_public_reads=True,
        map_basemap_url="/map/static/civic/blank-tile.svg?z={z}&x={x}&y={y}",
        map_basemap_crs="GCJ02",
    )
    with serving(create_app(settings)) as base:
        yield base


@pytest.fixture(scope="package")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is not installed (./dev installs Debian's chromium)")
    with playwright_api.sync_playwright() as playwright:
        chromium = launch(playwright)
        yield chromium
        chromium.close()


@pytest.fixture(scope="package")
def artifacts() -> Path:
    """Screenshots and PDFs for people to look at (git-ignored)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


class MapPage:
    """A browser page on the map with its network log; `open` waits until it has drawn."""

    def __init__(self, page: Any, log: NetworkLog, base: str) -> None:
        self.page = page
        self.log = log
        self.base = base
        self.errors: list[str] = []
        page.on("pageerror", lambda exc: self.errors.append(str(exc)))

    def open(self, path: str) -> Any:
        response = self.page.goto(self.base + path)
        assert response is not None and response.status == 200, path
        self.page.wait_for_function("window.civicMapReady === true", timeout=30_000)
        return response

    def evaluate(self, script: str, arg: Any = None) -> Any:
        return self.page.evaluate(script, arg)

    def shot(self, folder: Path, name: str) -> Path:
        path = folder / f"{name}.png"
        self.page.screenshot(path=str(path))
        return path

    def assert_offline(self) -> None:
        """No request left the machine, none failed, and the page threw nothing."""
        assert self.log.blocked == [], self.log.blocked
        assert self.log.failed == [], self.log.failed
        assert self.errors == [], self.errors


@pytest.fixture
def open_map(browser: Any) -> Iterator[Callable[..., MapPage]]:
    """Open map pages on a server; each page's network is checked when the test ends."""
    pages: list[MapPage] = []
    contexts: list[Any] = []

    def make(base: str, width: int = 1280, height: int = 800) -> MapPage:
        context = browser.new_context(viewport={"width": width, "height": height})
        contexts.append(context)
        log = guard_network(context)
        page = MapPage(context.new_page(), log, base)
        pages.append(page)
        return page

    yield make
    try:
        for page in pages:
            page.assert_offline()
    finally:
        for context in contexts:
            context.close()


def node() -> str:
    """The node binary (./dev needs it for npm), or skip."""
    found = shutil.which("node")
    if found is None:
        pytest.skip("node is not installed")
    return found
