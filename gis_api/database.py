"""Engines: one per process, created by whoever starts the work (CLI or app)."""

from __future__ import annotations

from sqlalchemy import Engine, create_engine, text

from gis_api import cluster
from gis_api.settings import Settings


def database_url(settings: Settings, start_cluster: bool = False) -> str:
    """The configured URL, else the project cluster's (started first if asked)."""
    if settings.database_url:
        return settings.database_url
    if start_cluster:
        return cluster.ensure_running(settings.cluster())
    return cluster.url(settings.cluster())


def make_engine(url: str) -> Engine:
    """An engine for `url` with a pool sized for a 2-core service."""
    return create_engine(url, pool_size=5, max_overflow=10, pool_pre_ping=True)


def postgis_version(engine: Engine) -> str:
    """PostGIS library version (raises if the database or extension is unreachable)."""
    with engine.connect() as conn:
        return str(conn.execute(text("SELECT postgis_lib_version()")).scalar_one())
