"""Tests run against a real PostGIS: a throwaway database on the project cluster.

The test command starts the cluster (`civic-gis db up`); this session creates
one database with PostGIS, migrates it to head, and drops it at the end.
Tests that commit (imports do) get empty layer tables before they start.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, text

from gis_api import cluster
from gis_api.database import make_engine
from gis_api.settings import Settings
from layers import migrate
from layers.catalog import CATALOG


@pytest.fixture(scope="session")
def cluster_config() -> cluster.ClusterConfig:
    """The project cluster, started if needed."""
    cfg = Settings().cluster()
    cluster.ensure_running(cfg)
    return cfg


@pytest.fixture(scope="session")
def database_url(cluster_config: cluster.ClusterConfig) -> Iterator[str]:
    """URL of a fresh, migrated database for this test session."""
    name = f"civic_gis_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    url = cluster.create_database(cluster_config, name)
    engine = make_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    yield url
    cluster.drop_database(cluster_config, name)


@pytest.fixture(scope="session")
def session_engine(database_url: str) -> Iterator[Engine]:
    """One engine for the session."""
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


def truncate_layers(engine: Engine) -> None:
    """Empty every layer table."""
    tables = ", ".join(f'"{spec.table}"' for spec in CATALOG)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))


@pytest.fixture
def engine(session_engine: Engine) -> Engine:
    """The session engine with every layer empty."""
    truncate_layers(session_engine)
    return session_engine
