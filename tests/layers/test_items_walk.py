"""Early pages in id order are read along the primary key from the first match; when the
matches are too far apart for that walk, the page is read by sorting, and is the same.

The street: lamps 1-5 and 2,995-3,000 stand inside the planner's box, lamps 6-2,994
outside it, so the first ten matches span 2,999 ids, more than the walk reads for a page
of ten (2,000 rows).
"""

from __future__ import annotations

import json

import pytest
from sqlalchemy import Engine, text

from gis_api.ogc import crs as api_crs
from gis_api.ogc.bbox import bbox_filter
from gis_api.settings import Settings
from layers import features_query
from layers.catalog import CATALOG
from layers.features_query import ItemsQuery, fetch_items
from layers.tables import table_of

SPEC = CATALOG.get("street_lamps")
TABLE = table_of(SPEC)
BOX = (129.60, 44.58, 129.61, 44.59)


@pytest.fixture
def street(engine: Engine) -> Engine:
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO street_lamps (id, code, geom)"
                " SELECT i, 'L-' || lpad(i::text, 4, '0'), ST_SetSRID(ST_MakePoint("
                "  CASE WHEN i <= 5 OR i >= 2995 THEN 129.605 ELSE 129.700 END,"
                "  44.585 + i * 1e-7), 4326)"
                " FROM generate_series(1, 3000) AS i"
            )
        )
    return engine


def page(engine: Engine, limit: int, offset: int = 0, walk: bool | None = None) -> list[str]:
    """The codes on the page (`walk`: that statement alone, without the fallback)."""
    crs = api_crs.resolve(None, Settings().city_gk_epsg)
    box = bbox_filter(TABLE, BOX, crs, points=True)
    query = ItemsQuery(
        SPEC,
        TABLE,
        any_of=box.clauses,
        params=box.params,
        limit=limit,
        offset=offset,
        properties=("code",),
    )
    with engine.connect() as conn:
        if walk is None:
            result = fetch_items(conn, query)
            assert result.matched == 11
            features = result.features_json
        else:
            statement, params = features_query._statement(query, walk)
            features = conn.execute(statement, params).one().features or ""
    return [f["properties"]["code"] for f in json.loads(f"[{features}]")]


def test_a_first_page_within_the_walk_is_read_by_it(street: Engine) -> None:
    assert page(street, limit=3, walk=True) == ["L-0001", "L-0002", "L-0003"]
    assert page(street, limit=3) == ["L-0001", "L-0002", "L-0003"]


def test_a_page_beyond_the_walk_falls_back_to_sorting_and_loses_nothing(street: Engine) -> None:
    codes = [f"L-{i:04d}" for i in (1, 2, 3, 4, 5, 2995, 2996, 2997, 2998, 2999)]
    assert page(street, limit=10, walk=True) == codes[:5]  # the walk alone comes short
    assert page(street, limit=10) == codes
    assert page(street, limit=3, offset=4) == ["L-0005", "L-2995", "L-2996"]
    assert page(street, limit=10, offset=10) == ["L-3000"]
    assert page(street, limit=10, offset=11) == []
