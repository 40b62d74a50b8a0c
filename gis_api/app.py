"""The FastAPI application factory."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from fastapi.middleware.gzip import GZipMiddleware
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from gis_api import middleware, problems
from gis_api.auth import current_principal, session
from gis_api.auth.credentials import VerifiedTokens, jwt_key
from gis_api.auth.limits import LoginLimiter
from gis_api.database import ReadPool, database_url, make_engine, read_engine
from gis_api.ogc import edit, features
from gis_api.routes import (
    api_docs,
    auth,
    checks,
    health,
    landing,
    login,
    patrols,
    tiles,
    uploads,
)
from gis_api.routes import map as map_pages
from gis_api.settings import Settings
from layers import migrate
from layers.profile import RuleProfile, load_profile
from layers.school_zones import sync_zone_distances

log = logging.getLogger(__name__)


def _prepare_database(engine: Engine, profile: RuleProfile) -> None:
    """Hand the profile's school-zone distances to the database, if it is ready.

    A database that is down or not migrated must not stop the service from
    starting: `/health` then says what is wrong.
    """
    try:
        if migrate.is_at_head(engine):
            sync_zone_distances(engine, profile)
    except SQLAlchemyError as exc:
        log.warning("database not ready at start-up: %s", exc.__class__.__name__)


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; the engine and rule profile live on `app.state` for its lifetime."""
    settings = settings or Settings()
    profile = load_profile(settings.profile)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        url = database_url(settings)
        engine = make_engine(url)
        app.state.engine = engine
        # One-statement reads: no BEGIN/ROLLBACK; the async endpoints' own connections.
        app.state.read_engine = read_engine(engine)
        app.state.read_pool = ReadPool(url)
        _prepare_database(engine, profile)
        try:
            yield
        finally:
            await app.state.read_pool.close()
            engine.dispose()

    app = FastAPI(
        title="civic-gis",
        summary="文明城市创建 GIS 巡查服务 / civilized-city inspection GIS",
        version="0.1.0",
        lifespan=lifespan,
        openapi_url="/api",
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.profile = profile
    app.state.extent_cache = {}
    app.state.jwt_key = jwt_key(settings)
    app.state.verified_tokens = VerifiedTokens()
    app.state.login_limiter = LoginLimiter(settings.login_attempts_per_minute)
    problems.install(app)
    session.install(app)
    # Browsers ask for gzip: the city overview, grid tiles and the map's scripts shrink
    # 3-8x on the wire. Clients that do not ask get the bytes as they are.
    app.add_middleware(GZipMiddleware, minimum_size=1024, compresslevel=6)
    middleware.install(app, settings)
    # Public whatever the settings: health for monitoring, the API description and its
    # page (they tell a client how to log in), the login itself.
    api_docs.install(app)
    app.include_router(health.router)
    app.include_router(auth.router)
    app.include_router(login.router)
    # Reads: anonymous only when CIVIC_GIS_AUTH_PUBLIC_READS is set.
    reads = [Depends(current_principal)]
    app.include_router(landing.router, dependencies=reads)
    app.include_router(features.router, dependencies=reads)
    app.include_router(checks.router, dependencies=reads)
    app.include_router(tiles.router, dependencies=reads)
    app.include_router(map_pages.router, dependencies=reads)
    # Writes: each route requires a writer itself.
    app.include_router(edit.router)
    app.include_router(uploads.router)
    app.include_router(patrols.router)
    return app
