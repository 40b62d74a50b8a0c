"""Migrations: the models and the migrations agree, and both directions work."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect, text

from gis_api import cluster
from gis_api.database import make_engine
from layers import migrate
from layers.catalog import CATALOG
from layers.tables import METADATA


@pytest.fixture
def blank(cluster_config: cluster.ClusterConfig) -> Iterator[Engine]:
    name = f"civic_gis_mig_{uuid.uuid4().hex[:8]}"
    engine = make_engine(cluster.create_database(cluster_config, name))
    yield engine
    engine.dispose()
    cluster.drop_database(cluster_config, name)


def _include(obj: object, name: str | None, type_: str, reflected: bool, other: object) -> bool:
    # PostGIS's own tables (spatial_ref_sys) are not ours.
    return not (type_ == "table" and name == "spatial_ref_sys")


def test_a_migrated_database_matches_the_models_exactly(blank: Engine) -> None:
    migrate.upgrade(blank)
    assert migrate.is_at_head(blank)
    with blank.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"include_object": _include, "compare_type": True}
        )
        assert compare_metadata(context, METADATA) == []


def test_upgrade_then_downgrade_leaves_nothing_behind(blank: Engine) -> None:
    migrate.upgrade(blank)
    tables = set(inspect(blank).get_table_names())
    assert {spec.table for spec in CATALOG} <= tables
    migrate.downgrade(blank, "base")
    left = set(inspect(blank).get_table_names()) - {"spatial_ref_sys", "alembic_version"}
    assert left == set()
    with blank.connect() as conn:
        functions = conn.execute(
            text("SELECT proname FROM pg_proc WHERE proname LIKE 'civic_gis%'")
        ).all()
    assert functions == []
    migrate.upgrade(blank)  # and up again
    assert migrate.is_at_head(blank)


def test_every_layer_has_a_spatial_index_on_geometry_and_geography(session_engine: Engine) -> None:
    with session_engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT tablename, indexdef FROM pg_indexes "
                "WHERE schemaname = 'public' AND indexdef LIKE '%USING gist%'"
            )
        ).all()
    for spec in CATALOG:
        defs = [d for t, d in rows if t == spec.table]
        assert any("(geom)" in d for d in defs), spec.id
        assert any("(geog)" in d for d in defs), spec.id
