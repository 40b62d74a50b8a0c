"""The FastAPI application factory."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from gis_api import problems
from gis_api.database import database_url, make_engine
from gis_api.ogc import features
from gis_api.routes import api_docs, checks, health, landing, tiles
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
        engine = make_engine(database_url(settings))
        app.state.engine = engine
        _prepare_database(engine, profile)
        try:
            yield
        finally:
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
    problems.install(app)
    api_docs.install(app)
    app.include_router(landing.router)
    app.include_router(health.router)
    app.include_router(features.router)
    app.include_router(checks.router)
    app.include_router(tiles.router)
    return app
