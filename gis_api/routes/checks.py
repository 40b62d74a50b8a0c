"""`/checks`, `/checks/{rule}`, the school-zone what-if and `/scorecards`."""

from __future__ import annotations

from typing import Any, Literal

import orjson
from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from gis_api.problems import ApiProblem
from layers.catalog import VENUES
from layers.checks import RULES
from layers.checks.framework import (
    DEFAULT_EVIDENCE_LIMIT,
    MAX_EVIDENCE_LIMIT,
    CheckError,
    Page,
)
from layers.checks.reports import describe, run_check, scorecard
from layers.checks.school_zones import SchoolZones, what_if_boundary

router = APIRouter(tags=["checks"])
JSON = "application/json"


def _json(body: Any) -> Response:
    return Response(orjson.dumps(body), media_type=JSON)


@router.get("/checks", summary="Every rule with its current profile values")
def list_checks(request: Request) -> Response:
    """Rules, names (中文/English), parameters as the profile sets them."""
    profile = request.app.state.profile
    base = str(request.base_url).rstrip("/")
    return _json(
        {
            "checks": [
                {**describe(rule, profile), "href": f"{base}/checks/{rule.id}"}
                for rule in RULES.values()
            ]
        }
    )


# Query parameters of /checks/{rule} that are not rule parameters.
_OWN = ("scope", "lang", "evidence_limit", "evidence_offset")


@router.get("/checks/{rule}", summary="Run one rule over a scope")
def run_rule(
    request: Request,
    rule: str = Path(description="Rule id, e.g. lamp-lighting-rate"),
    scope: str = Query("all", description="all | grid:CODE | community:CODE | street:CODE"),
    evidence_limit: int = Query(
        DEFAULT_EVIDENCE_LIMIT,
        ge=0,
        le=MAX_EVIDENCE_LIMIT,
        description="failing items drawn as evidence (0: figures only); verdicts count all",
    ),
    evidence_offset: int = Query(0, ge=0, description="failing items to skip (paging)"),
) -> Response:
    """Verdict, figures and one page of evidence; other query parameters override rule
    parameters. The evidence says how many items fail in all (`numberMatched`) and links
    the next and previous pages."""
    if rule not in RULES:
        raise ApiProblem(404, f"unknown rule {rule!r}; rules: {', '.join(RULES)}")
    overrides = {k: v for k, v in request.query_params.items() if k not in _OWN}
    for name in set(request.query_params.keys()):
        if len(request.query_params.getlist(name)) > 1:
            raise ApiProblem(400, f"query parameter {name!r} is given more than once")
    page = Page(evidence_limit, evidence_offset)
    try:
        with request.app.state.engine.connect() as conn:
            report = run_check(conn, request.app.state.profile, rule, scope, overrides, page)
    except CheckError as exc:
        raise ApiProblem(400, str(exc)) from exc
    report["evidence"]["links"] = _page_links(request, page, report["evidence"]["numberMatched"])
    return _json(report)


def _page_links(request: Request, page: Page, matched: int) -> list[dict[str, str]]:
    """`next` and `prev` links to the neighbouring pages of evidence, when there are some."""
    links = []
    if page.limit and page.offset + page.limit < matched:
        url = request.url.include_query_params(evidence_offset=page.offset + page.limit)
        links.append({"rel": "next", "type": JSON, "href": str(url)})
    if page.offset > 0:
        url = request.url.include_query_params(
            evidence_offset=max(0, page.offset - max(page.limit, 1))
        )
        links.append({"rel": "prev", "type": JSON, "href": str(url)})
    return links


class PointGeometry(BaseModel):
    """A GeoJSON Point in WGS-84 longitude/latitude."""

    model_config = ConfigDict(extra="forbid")
    type: Literal["Point"]
    coordinates: tuple[float, float]


class WhatIf(BaseModel):
    """May a venue of this type open at this point?"""

    model_config = ConfigDict(extra="forbid")
    point: PointGeometry
    venue_type: str = Field(description="venue type key, e.g. internet_cafe")


@router.post("/checks/school-zones/what-if", summary="May a venue open here?")
def what_if(request: Request, body: WhatIf) -> Response:
    """Both measuring methods: allowed or not, governing schools, distances and paths."""
    keys = VENUES.field("venue_type").choice_keys()
    if body.venue_type not in keys:
        raise ApiProblem(400, f"venue_type {body.venue_type!r} is not one of {', '.join(keys)}")
    lon, lat = body.point.coordinates
    if not (-180 <= lon <= 180 and -90 <= lat <= 90):
        raise ApiProblem(400, f"point ({lon}, {lat}) is not longitude, latitude in WGS-84")
    rule = SchoolZones()
    params = rule.parameters(request.app.state.profile)
    methods: dict[str, Any] = {}
    with request.app.state.engine.connect() as conn:
        found = what_if_boundary(conn, params, lon, lat, body.venue_type)
        methods["boundary"] = _verdict(found)
        from layers.checks.walking import what_if_walking

        methods["walking"] = _verdict(what_if_walking(conn, params, lon, lat, body.venue_type))
    return _json(
        {
            "venue_type": body.venue_type,
            "point": body.point.model_dump(),
            "profile_method": params.method,
            "allowed": methods[params.method]["allowed"],
            "methods": methods,
        }
    )


def _verdict(found: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "allowed": not found,
        "schools": sorted({f["properties"]["school_code"] for f in found}),
        "evidence": {"type": "FeatureCollection", "features": found},
    }


@router.get("/scorecards", summary="Every rule per unit, ranked")
def scorecards(
    request: Request,
    level: Literal["grid", "community", "street"] = Query("grid"),
) -> Response:
    """Pass/fail of every rule for every grid, community or street, with a ranking."""
    unknown = set(request.query_params.keys()) - {"level", "lang"}
    if unknown:
        raise ApiProblem(400, f"unknown query parameter(s): {', '.join(sorted(unknown))}")
    state = request.app.state
    return _json(scorecard(state.engine, state.profile, level, state.settings.check_workers))
