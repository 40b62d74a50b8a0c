"""`GET /patrols`: patrol coverage (巡查到位) of a grid over a period."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from gis_api.auth import User
from gis_api.problems import ApiProblem
from layers.patrols import grid_exists, patrol_coverage

router = APIRouter(tags=["Field uploads"])


@router.get("/patrols", summary="Share of a grid's roads patrolled in a period")
async def get_patrols(
    request: Request,
    _: User,
    grid: Annotated[str, Query(description="Grid code (15 digits)", pattern=r"^[0-9]{15}$")],
    from_: Annotated[datetime | None, Query(alias="from", description="ISO time")] = None,
    to: Annotated[datetime | None, Query(description="ISO time (exclusive)")] = None,
) -> JSONResponse:
    """Road length within the profile's patrol distance of uploaded tracks, and the gaps."""
    for name, value in (("from", from_), ("to", to)):
        if value is not None and value.tzinfo is None:
            raise ApiProblem(400, f"{name}: give a time zone, e.g. 2026-11-01T00:00+08:00")
    if from_ and to and from_ >= to:
        raise ApiProblem(400, "from: must be before to")
    engine = request.app.state.engine
    distance = request.app.state.profile.field.patrol_distance_m

    def run() -> dict[str, object] | None:
        with engine.connect() as conn:
            if not grid_exists(conn, grid):
                return None
            return patrol_coverage(conn, grid, from_, to, distance)

    result = await run_in_threadpool(run)
    if result is None:
        raise ApiProblem(404, f"grid: no grid {grid}")
    return JSONResponse(result)
