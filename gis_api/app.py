"""The FastAPI application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from gis_api.database import database_url, make_engine
from gis_api.routes import health, landing
from gis_api.settings import Settings
from layers.profile import load_profile


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; the engine and rule profile live on `app.state` for its lifetime."""
    settings = settings or Settings()
    profile = load_profile(settings.profile)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(database_url(settings))
        app.state.engine = engine
        try:
            yield
        finally:
            engine.dispose()

    app = FastAPI(
        title="civic-gis",
        summary="文明城市创建 GIS 巡查服务 / civilized-city inspection GIS",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.profile = profile
    app.include_router(landing.router)
    app.include_router(health.router)
    return app
