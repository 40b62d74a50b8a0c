"""Schemathesis against `/api`: whatever a client sends, the service never answers 5xx.

Every operation of the OpenAPI description gets generated requests, valid
(positive) and invalid (negative), once anonymously and once as an admin, on
the tiny city. Few examples per operation keep the run short: breadth, not depth.
(Hypothesis is driven directly: schemathesis's lazy pytest fixtures need a
pytest internal that pytest 9 removed.)
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.python.asgi import shutdown_lifespans
from sqlalchemy import Engine

from gis_api.app import create_app
from gis_api.settings import Settings
from layers.catalog import CATALOG
from tests.access import Accounts, bearer, city_with_accounts

# A few minutes in all on a 2-core machine: outside the quick `-m "not slow"` loop, run by CI.
pytestmark = pytest.mark.slow

EXAMPLES = settings(
    max_examples=10,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)


@pytest.fixture(scope="module")
def fuzz_accounts(session_engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> Accounts:
    return city_with_accounts(session_engine, tmp_path_factory.mktemp("fuzz_city"))


@pytest.fixture(scope="module")
def api_schema(
    database_url: str, fuzz_accounts: Accounts, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Any]:
    """The app's own description, called in-process (schemathesis runs its lifespan)."""
    state = tmp_path_factory.mktemp("fuzz_state")
    app = create_app(Settings(database_url=database_url, state_dir=state))
    yield schemathesis.openapi.from_asgi("/api", app)
    shutdown_lifespans()


def server_errors(schema: Any, headers: dict[str, str], answered: Counter[int]) -> list[str]:
    """Each operation's generated requests; the ones answered 5xx (`answered` counts statuses)."""
    failures: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 30  # every route is described

    for operation in operations:
        cases = st.one_of(
            operation.as_strategy(GenerationMode.POSITIVE),
            operation.as_strategy(GenerationMode.NEGATIVE),
        )

        @EXAMPLES
        @given(case=cases)
        def call(case: Any) -> None:
            response = case.call(headers=headers)
            answered[response.status_code] += 1
            if response.status_code >= 500:
                failures.append(
                    f"{case.method} {case.formatted_path} {case.query or ''} "
                    f"-> {response.status_code}: {response.text[:300]}"
                )

        call()
    return failures


def test_anonymous_requests_never_get_a_server_error(api_schema: Any) -> None:
    answered: Counter[int] = Counter()
    assert server_errors(api_schema, {}, answered) == []
    assert answered[401] > answered[200]  # reads are closed by default


def test_an_admins_requests_never_get_a_server_error(
    api_schema: Any, fuzz_accounts: Accounts
) -> None:
    answered: Counter[int] = Counter()
    assert server_errors(api_schema, bearer(fuzz_accounts.admin), answered) == []
    assert answered[200] > answered[401]  # the token was accepted


@pytest.mark.parametrize("layer", ["street_lamps", "illegal_buildings", "grids", "entrances"])
def test_random_edits_at_the_current_version_never_get_a_server_error(
    api_schema: Any, fuzz_accounts: Accounts, layer: str
) -> None:
    """Bodies reach the field, geometry and reference rules only with a matching If-Match."""
    operation = api_schema["/collections/{layer}/items/{item_id}"]["PATCH"]
    every_version = ", ".join(f'"{layer}-1-v{v}"' for v in range(1, 400))
    fixed = {"path_parameters": {"layer": layer, "item_id": "1"}}
    fixed["headers"] = {"If-Match": every_version, **bearer(fuzz_accounts.admin)}
    cases = st.one_of(
        operation.as_strategy(GenerationMode.POSITIVE, **fixed),
        operation.as_strategy(GenerationMode.NEGATIVE, **fixed),
    )
    answered: Counter[int] = Counter()
    failures: list[str] = []

    @settings(EXAMPLES, max_examples=20)
    @given(case=cases)
    def call(case: Any) -> None:
        response = case.call()
        answered[response.status_code] += 1
        if response.status_code >= 500:
            failures.append(f"{case.body!r} -> {response.status_code}: {response.text[:300]}")

    call()
    assert failures == []
    assert answered[400] > 0  # the rules were reached


def _values() -> st.SearchStrategy[Any]:
    return st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(2**70), max_value=2**70),
        st.floats(allow_nan=False),
        st.text(max_size=20),
        st.sampled_from(
            ["lit", "不亮", "2026-11-27", "2026-11-27T08:00:00+08:00", "RD-1", "SCH-1"]
        ),
    )


def _geometries() -> st.SearchStrategy[Any]:
    coordinate = st.floats(min_value=-200, max_value=200, allow_nan=False)
    point = st.lists(coordinate, min_size=0, max_size=3)
    ring = st.lists(point, min_size=0, max_size=5)
    return st.one_of(
        st.none(),
        st.fixed_dictionaries({"type": st.just("Point"), "coordinates": point}),
        st.fixed_dictionaries(
            {
                "type": st.sampled_from(["LineString", "Polygon", "MultiPolygon", "Nonsense"]),
                "coordinates": st.one_of(ring, st.lists(ring, max_size=2)),
            }
        ),
    )


@pytest.mark.parametrize("layer", ["street_lamps", "illegal_buildings", "grids", "entrances"])
def test_edits_with_the_layers_own_property_names_never_get_a_server_error(
    database_url: str,
    fuzz_accounts: Accounts,
    tmp_path_factory: pytest.TempPathFactory,
    layer: str,
) -> None:
    """Real field names with wild values: the field, geometry and reference rules answer."""
    names = [*CATALOG.get(layer).field_names(), "code", "version", "grid_id"]
    bodies = st.fixed_dictionaries(
        {
            "properties": st.dictionaries(st.sampled_from(names), _values(), max_size=3),
            "geometry": _geometries(),
        }
    )
    every_version = ", ".join(f'"{layer}-1-v{v}"' for v in range(1, 400))
    headers = {"If-Match": every_version, **bearer(fuzz_accounts.admin)}
    answered: Counter[int] = Counter()
    failures: list[str] = []
    settings_ = Settings(database_url=database_url, state_dir=tmp_path_factory.mktemp("state"))
    with TestClient(create_app(settings_)) as client:

        @settings(EXAMPLES, max_examples=40)
        @given(body=bodies)
        def call(body: dict[str, Any]) -> None:
            response = client.patch(f"/collections/{layer}/items/1", json=body, headers=headers)
            answered[response.status_code] += 1
            if response.status_code >= 500:
                failures.append(f"{body!r} -> {response.status_code}: {response.text[:300]}")

        call()
    assert failures == []
    assert answered[400] > 0 and answered[200] > 0, answered
