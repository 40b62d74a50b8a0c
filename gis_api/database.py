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
    """An engine for `url`, pooled for 16 concurrent requests per worker."""
    # A fixed pool: connections opened and closed per request under load cost a
    # quarter of a tile request (bench/ogc_peers.py). No pre-ping round trip per
    # checkout; a connection broken by a database restart is replaced when it fails.
    return create_engine(url, pool_size=16, max_overflow=4, pool_pre_ping=False, pool_recycle=1800)


def postgis_version(engine: Engine) -> str:
    """PostGIS library version (raises if the database or extension is unreachable)."""
    with engine.connect() as conn:
        return str(conn.execute(text("SELECT postgis_lib_version()")).scalar_one())
