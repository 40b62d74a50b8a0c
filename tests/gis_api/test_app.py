"""The service's first pages: health for monitoring, the landing page for people."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from data.importer import import_file
from gis_api.app import create_app
from gis_api.settings import Settings
from layers.catalog import CATALOG
from tests.tiny_city import tiny_city, write_geojson


@pytest.fixture
def client(database_url: str, engine: Engine) -> Iterator[TestClient]:
    with TestClient(
        create_app(Settings(database_url=database_url, auth_public_reads=True))
    ) as client:
        yield client


def test_health_reports_postgis_and_migrations_at_head(client: TestClient) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok" and body["database"] is True
    assert body["postgis"].startswith("3.")
    assert body["migrations_at_head"] is True


def test_health_says_503_when_the_database_is_unreachable() -> None:
    settings = Settings(database_url="postgresql+psycopg://nobody:x@127.0.0.1:9/none")
    with TestClient(create_app(settings)) as client:
        response = client.get("/health")
    assert response.status_code == 503
    assert response.json()["status"] == "down"


def test_the_landing_page_is_chinese_by_default_and_counts_every_layer(
    client: TestClient, engine: Engine, tmp_path: Path
) -> None:
    for spec in CATALOG:
        import_file(
            engine, write_geojson(tiny_city()[spec.id], tmp_path / f"{spec.id}.geojson"), spec
        )
    html = {"Accept": "text/html"}
    page = client.get("/", headers=html)
    assert page.status_code == 200
    assert "路灯" in page.text and "网格" in page.text
    english = client.get("/?lang=en", headers=html)
    assert "Street lamps" in english.text or "street lamps" in english.text.lower()
    refused = client.get("/?lang=fr")
    assert refused.status_code == 400 and "lang" in refused.json()["detail"]
