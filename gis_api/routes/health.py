"""`/health`: is the database reachable, which PostGIS, are migrations at head."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel
from sqlalchemy.exc import SQLAlchemyError

from gis_api.database import postgis_version
from layers import migrate

router = APIRouter()


class Health(BaseModel):
    """Service health as monitoring reads it."""

    status: Literal["ok", "degraded", "down"]
    database: bool
    postgis: str | None
    migration: str | None
    migration_head: str | None
    migrations_at_head: bool


@router.get("/health", response_model=Health, tags=["service"])
def health(request: Request, response: Response) -> Health:
    """Answer 200 when everything is ready, 503 otherwise (with what is wrong)."""
    engine = request.app.state.engine
    head = migrate.head_revision(engine)
    try:
        version = postgis_version(engine)
        current = migrate.current_revision(engine)
    except SQLAlchemyError:
        response.status_code = 503
        return Health(
            status="down",
            database=False,
            postgis=None,
            migration=None,
            migration_head=head,
            migrations_at_head=False,
        )
    at_head = current == head
    if not at_head:
        response.status_code = 503
    return Health(
        status="ok" if at_head else "degraded",
        database=True,
        postgis=version,
        migration=current,
        migration_head=head,
        migrations_at_head=at_head,
    )
