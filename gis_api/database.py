"""Engines: one per process, created by whoever starts the work (CLI or app)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from typing import Any

from psycopg import AsyncConnection
from sqlalchemy import Engine, create_engine, make_url, text

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


def read_engine(engine: Engine) -> Engine:
    """`engine`'s pool in autocommit, for requests that run one read statement.

    Without it every read is three round trips (BEGIN, the query, ROLLBACK on
    return to the pool); a single statement sees one snapshot either way. Never
    for writes: `begin()` on this engine would not make a transaction.
    """
    return engine.execution_options(isolation_level="AUTOCOMMIT")


class ReadPool:
    """Autocommit psycopg connections for one-statement reads in `async` endpoints.

    Why beside the engine: a sync endpoint runs in the thread pool, and that hop plus
    SQLAlchemy's connection handling were ~0.5 ms of the ~3 ms a single feature or a
    vector tile costs the server (SQLAlchemy's asyncio pool costs as much again).
    At most `size` connections, opened when first needed (8: beside the engine's pool,
    and more statements at once per worker only queue inside a database on a few
    cores; requests beyond wait for a connection). A connection whose statement failed
    or was interrupted (a client gone mid-query) is closed, not reused. Use it from one
    event loop (the server's).
    """

    def __init__(self, url: str, size: int = 8) -> None:
        self._conninfo = make_url(url).set(drivername="postgresql").render_as_string(False)
        self._slots = asyncio.Semaphore(size)
        self._idle: list[AsyncConnection[Any]] = []

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[AsyncConnection[Any]]:
        """A connection for one read, returned to the pool afterwards."""
        async with self._slots:
            conn = self._idle.pop() if self._idle else await self._connect()
            try:
                yield conn
            except BaseException:
                with suppress(Exception):
                    await conn.close()
                raise
            if conn.closed:
                return
            self._idle.append(conn)

    async def _connect(self) -> AsyncConnection[Any]:
        return await AsyncConnection.connect(self._conninfo, autocommit=True)

    async def close(self) -> None:
        """Close the idle connections (at shutdown, when no request holds one)."""
        while self._idle:
            await self._idle.pop().close()


def postgis_version(engine: Engine) -> str:
    """PostGIS library version (raises if the database or extension is unreachable)."""
    with engine.connect() as conn:
        return str(conn.execute(text("SELECT postgis_lib_version()")).scalar_one())
