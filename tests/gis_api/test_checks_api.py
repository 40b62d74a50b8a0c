"""Checks over HTTP and the command line: what planners and leaders ask of the tiny city."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from data.importer import import_file
from gis_api.app import create_app
from gis_api.settings import Settings
from layers.catalog import CATALOG
from layers.checks import RULES
from tests.tiny_city import COMMUNITY, GRID_EAST, GRID_WEST, tiny_city, write_geojson


@pytest.fixture
def client(database_url: str, engine: Engine, tmp_path: Path) -> Iterator[TestClient]:
    data = tiny_city()
    for spec in CATALOG:
        import_file(engine, write_geojson(data[spec.id], tmp_path / f"{spec.id}.geojson"), spec)
    with TestClient(
        create_app(Settings(database_url=database_url, auth_public_reads=True))
    ) as client:
        yield client


def test_a_planner_lists_the_rules_with_the_profile_values(client: TestClient) -> None:
    body = client.get("/checks").json()
    ids = [c["id"] for c in body["checks"]]
    assert ids == list(RULES)
    lighting = next(c for c in body["checks"] if c["id"] == "lamp-lighting-rate")
    assert lighting["name"] == {"zh": "亮灯率", "en": "Lamp lighting rate"}
    assert lighting["parameters"]["lighting_rate"]["main"] == 0.96


def test_the_west_grid_fails_its_lighting_rate_with_the_dark_lamp_on_the_map(
    client: TestClient,
) -> None:
    response = client.get("/checks/lamp-lighting-rate", params={"scope": f"grid:{GRID_WEST}"})
    assert response.status_code == 200
    body = response.json()
    assert body["scope"] == f"grid:{GRID_WEST}" and body["passed"] is False
    assert body["summary"]["lit"] == 6 and body["summary"]["installed"] == 7
    evidence = body["evidence"]
    assert evidence["type"] == "FeatureCollection"
    assert [f["properties"]["code"] for f in evidence["features"]] == ["L-0003"]
    assert evidence["features"][0]["geometry"]["type"] == "Point"


def test_a_what_if_threshold_is_a_query_parameter(client: TestClient) -> None:
    body = client.get(
        "/checks/lamp-lighting-rate",
        params={"scope": f"community:{COMMUNITY}", "lighting_rate.main": "0.9"},
    ).json()
    assert body["parameters"]["lighting_rate"]["main"] == 0.9 and body["passed"] is True


@pytest.mark.parametrize(
    ("url", "params", "status", "named"),
    [
        ("/checks/lamp-brightness", {}, 404, "lamp-brightness"),
        ("/checks/lamp-lighting-rate", {"scope": "grid:123"}, 400, "grid:123"),
        ("/checks/lamp-lighting-rate", {"scope": "planet:231005001001001"}, 400, "planet"),
        ("/checks/lamp-lighting-rate", {"colour": "red"}, 400, "colour"),
        ("/checks/lamp-lighting-rate", {"lighting_rate.main": "high"}, 400, "lighting_rate"),
        ("/scorecards", {"level": "province"}, 400, "level"),
    ],
)
def test_bad_rules_scopes_and_parameters_are_named(
    client: TestClient, url: str, params: dict[str, str], status: int, named: str
) -> None:
    response = client.get(url, params=params)
    assert response.status_code == status
    assert named in response.json()["detail"]


def test_the_school_zone_check_finds_the_cafe_150_m_from_the_school(client: TestClient) -> None:
    body = client.get("/checks/school-zones", params={"method": "boundary"}).json()
    assert body["passed"] is False
    (violation,) = body["evidence"]["features"]
    assert violation["properties"]["venue_code"] == "V-1"
    assert violation["properties"]["distance_m"] == pytest.approx(150.0, abs=0.15)


def test_grids_are_ranked_and_the_last_is_named(client: TestClient) -> None:
    body = client.get("/scorecards", params={"level": "grid"}).json()
    codes = [u["code"] for u in body["units"]]
    assert set(codes) == {GRID_WEST, GRID_EAST}
    east = next(u for u in body["units"] if u["code"] == GRID_EAST)
    west = next(u for u in body["units"] if u["code"] == GRID_WEST)
    assert west["rules"]["lamp-lighting-rate"]["passed"] is False
    assert east["rules"]["lamp-lighting-rate"]["passed"] is True
    assert [u["rank"] for u in body["units"]] == [1, 2]
    assert body["last"] == body["units"][-1]["code"]
    assert east["rank"] < west["rank"] or east["passed"] == west["passed"]


def test_may_an_internet_cafe_open_here_both_methods(client: TestClient) -> None:
    from shapely.geometry import Point

    from tests.tiny_city import wgs

    near = wgs(Point(50, 300))  # 110 m north of the school's north side (y = 190)
    response = client.post(
        "/checks/school-zones/what-if",
        json={
            "point": {"type": "Point", "coordinates": [near.x, near.y]},
            "venue_type": "internet_cafe",
        },
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["methods"]["boundary"]["allowed"] is False
    assert body["methods"]["boundary"]["schools"] == ["SCH-1"]
    assert "walking" in body["methods"]
    bad = client.post(
        "/checks/school-zones/what-if",
        json={"point": {"type": "Point", "coordinates": [near.x, near.y]}, "venue_type": "bar"},
    )
    assert bad.status_code == 400 and "bar" in bad.json()["detail"]


def test_evidence_comes_in_pages_with_links_and_the_total(client: TestClient) -> None:
    url = "/checks/signage-quota"
    whole = client.get(url, params={"evidence_limit": 100}).json()
    matched = whole["evidence"]["numberMatched"]
    codes = [f["properties"]["code"] for f in whole["evidence"]["features"]]
    assert matched == len(codes) >= 3
    first = client.get(url, params={"evidence_limit": 1}).json()
    assert first["evidence"]["numberReturned"] == 1
    assert first["evidence"]["numberMatched"] == matched
    assert first["passed"] == whole["passed"] and first["summary"] == whole["summary"]
    links = {link["rel"]: link["href"] for link in first["evidence"]["links"]}
    assert set(links) == {"next"}
    second = client.get(links["next"]).json()
    assert [f["properties"]["code"] for f in second["evidence"]["features"]] == codes[1:2]
    back = {link["rel"]: link["href"] for link in second["evidence"]["links"]}
    assert "evidence_offset=0" in back["prev"] and "evidence_offset=2" in back["next"]
    figures = client.get(url, params={"evidence_limit": 0}).json()
    assert figures["evidence"]["features"] == [] and figures["evidence"]["links"] == []
    assert figures["evidence"]["numberMatched"] == matched


@pytest.mark.parametrize(
    "params",
    [{"evidence_limit": "-1"}, {"evidence_limit": "10001"}, {"evidence_offset": "first"}],
)
def test_bad_evidence_pages_are_named(client: TestClient, params: dict[str, str]) -> None:
    response = client.get("/checks/lamp-lighting-rate", params=params)
    assert response.status_code == 400
    assert next(iter(params)) in response.json()["detail"]


def test_the_command_line_pages_the_evidence_too(client: TestClient, database_url: str) -> None:
    env = {**os.environ, "CIVIC_GIS_DATABASE_URL": database_url}
    done = subprocess.run(
        [sys.executable, "-m", "gis_api.cli", "check", "signage-quota", "--format", "json",
         "--evidence-limit", "1", "--evidence-offset", "1"],
        capture_output=True, text=True, env=env, timeout=300, check=True,
    )  # fmt: skip
    (report,) = json.loads(done.stdout)
    whole = client.get("/checks/signage-quota").json()
    assert report["evidence"]["numberMatched"] == whole["evidence"]["numberMatched"]
    assert [f["properties"]["code"] for f in report["evidence"]["features"]] == [
        whole["evidence"]["features"][1]["properties"]["code"]
    ]
