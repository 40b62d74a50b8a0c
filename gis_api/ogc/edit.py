"""Editing one feature (OGC API - Features Part 4 style): PATCH, DELETE and its history.

Every edit names a version: `If-Match` with the ETag the feature was read
with (428 without it, 412 when someone changed it since, nothing written).
The body is read only after authentication, so an anonymous client is
answered 401 before it can make the service parse anything.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Header, Path, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, ValidationError
from sqlalchemy import Connection
from sqlalchemy.exc import DataError, IntegrityError

from data.edits import InvalidEdit, check_edit_against_database, parse_change
from gis_api.auth import Principal, User, Writer, audit_context, check_in_grids, request_source
from gis_api.auth.audit import AuditEntry, feature_history
from gis_api.problems import ApiProblem
from layers.catalog import COLLECTIONS, GRIDS, LayerSpec, UnknownLayer
from layers.edits import (
    StoredFeature,
    delete_feature,
    feature_exists,
    lock_feature,
    update_feature,
)
from layers.features_query import OutputCrs, fetch_item
from layers.tables import table_of

router = APIRouter(tags=["OGC API - Features - edit"])

GEOJSON = "application/geo+json"
JSON_TYPES = ("application/json", "application/merge-patch+json", GEOJSON)
ITEM = "/collections/{layer}/items/{item_id}"
LayerId = Annotated[str, Path(description="Layer id")]
ItemId = Annotated[str, Path(description="Feature id")]
IfMatch = Annotated[
    str | None,
    Header(alias="If-Match", description="The ETag the feature was read with (required)"),
]
EDIT_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "the change breaks a rule of the layer"},
    401: {"description": "no or bad credentials"},
    403: {"description": "role or grid does not allow it"},
    404: {"description": "no such layer or feature"},
    409: {"description": "the change conflicts with other rows"},
    412: {"description": "the feature changed since it was read"},
    428: {"description": "If-Match missing"},
}


class FeaturePatch(BaseModel):
    """A GeoJSON Feature, or part of one: the properties and/or geometry to change."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["Feature"] | None = None
    id: int | str | None = None
    properties: dict[str, Any] | None = None
    geometry: dict[str, Any] | None = None
    links: list[Any] | None = None


class FeatureHistory(BaseModel):
    """The recorded changes of one feature, newest first."""

    layer: str
    id: int
    changes: list[AuditEntry]


def etag(layer: LayerSpec, item_id: str, version: int) -> str:
    """The ETag `GET .../items/{id}` sends for this version."""
    return f'"{layer.id}-{item_id}-v{version}"'


def _layer(layer: str) -> LayerSpec:
    try:
        return COLLECTIONS.get(layer)
    except UnknownLayer as exc:
        raise ApiProblem(404, str(exc)) from exc


def _editable(layer: str, principal: Principal) -> LayerSpec:
    spec = _layer(layer)
    if spec.derived_from:
        raise ApiProblem(
            405, f"{spec.id} is derived from {spec.derived_from}: edit that layer instead"
        )
    if spec is GRIDS and principal.grid_scoped:
        raise ApiProblem(403, "grids are redrawn by planners and admins, not inspectors")
    return spec


def _row_id(spec: LayerSpec, item_id: str) -> int:
    if not item_id.isdigit() or len(item_id) > 18:
        raise ApiProblem(404, f"no feature {item_id!r} in {spec.id}: ids are integers")
    return int(item_id)


def _wanted(if_match: str | None) -> list[str]:
    tags = [t.strip() for t in (if_match or "").split(",") if t.strip()]
    if not tags or tags == ["*"]:
        raise ApiProblem(
            428,
            "send If-Match with the ETag the feature was read with "
            "(GET .../items/{id} answers it): edits never overwrite unseen changes",
        )
    return tags


def _locked(conn: Connection, spec: LayerSpec, item_id: str, wanted: list[str]) -> StoredFeature:
    """The feature, locked, if its current ETag is one of `wanted` (404 / 412 otherwise)."""
    current = lock_feature(conn, spec, _row_id(spec, item_id))
    if current is None:
        raise ApiProblem(404, f"no feature {item_id} in {spec.id}")
    tag = etag(spec, item_id, current.version)
    if tag not in wanted:  # strong comparison: a weak W/ tag never matches
        raise ApiProblem(
            412,
            f"the feature changed since it was read: it is now version {current.version}",
            headers={"ETag": tag},
        )
    return current


def _database_refusal(exc: IntegrityError | DataError) -> ApiProblem:
    """A rule only the database checks; its constraint name, never the statement or values."""
    diag = getattr(exc.orig, "diag", None)
    constraint = getattr(diag, "constraint_name", None)
    if isinstance(exc, DataError):
        return ApiProblem(400, "a value does not fit its column (too large, or not storable)")
    return ApiProblem(409, f"the change conflicts with other rows ({constraint or 'constraint'})")


async def _body(request: Request) -> FeaturePatch:
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media not in JSON_TYPES:
        raise ApiProblem(415, f"send the change as one of: {', '.join(JSON_TYPES)}")
    try:
        return FeaturePatch.model_validate(orjson.loads(await request.body()))
    except orjson.JSONDecodeError as exc:
        raise ApiProblem(400, f"the body is not JSON: {exc}") from exc
    except ValidationError as exc:
        # Locations and messages only: the input may hold anything.
        where = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors()
        )
        raise ApiProblem(400, f"the body is not a GeoJSON Feature patch: {where}") from exc


def _patch(
    request: Request,
    principal: Principal,
    spec: LayerSpec,
    item_id: str,
    wanted: list[str],
    patch: FeaturePatch,
) -> Response:
    engine = request.app.state.engine
    try:
        with engine.begin() as conn:
            audit_context(conn, principal, request_source(request))
            current = _locked(conn, spec, item_id, wanted)
            change = parse_change(spec, patch.properties, patch.geometry, current.code)
            new_wkb = change.wkb
            check_in_grids(conn, principal, [current.wkb, *([new_wkb] if new_wkb else [])])
            check_edit_against_database(conn, spec, current.code, current.values, change)
            update_feature(conn, spec, current.id, change.values, new_wkb)
            found = fetch_item(conn, spec, table_of(spec), current.id, OutputCrs())
    except InvalidEdit as exc:
        raise ApiProblem(400, str(exc)) from exc
    except (IntegrityError, DataError) as exc:
        raise _database_refusal(exc) from exc
    assert found is not None
    feature_json, version = found
    return Response(
        feature_json, media_type=GEOJSON, headers={"ETag": etag(spec, item_id, version)}
    )


@router.patch(
    ITEM,
    summary="Change a feature's properties and/or geometry",
    response_class=Response,
    responses={200: {"content": {GEOJSON: {}}}, **EDIT_ERRORS, 415: {}},
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {t: {"schema": FeaturePatch.model_json_schema()} for t in JSON_TYPES},
        }
    },
)
async def patch_item(
    request: Request, principal: Writer, layer: LayerId, item_id: ItemId, if_match: IfMatch = None
) -> Response:
    """Set the given properties (catalog rules apply) and/or the geometry (GeoJSON, lon/lat).

    Inspectors may edit only features whose old and new place lie in their grids.
    """
    spec = _editable(layer, principal)
    _row_id(spec, item_id)
    wanted = _wanted(if_match)
    patch = await _body(request)
    if patch.id is not None and str(patch.id) != item_id:
        raise ApiProblem(400, f"the body is feature {patch.id}, the path feature {item_id}")
    return await run_in_threadpool(_patch, request, principal, spec, item_id, wanted, patch)


@router.delete(
    ITEM,
    summary="Delete a feature",
    status_code=204,
    response_class=Response,
    responses=EDIT_ERRORS,
)
def delete_item(
    request: Request, principal: Writer, layer: LayerId, item_id: ItemId, if_match: IfMatch = None
) -> Response:
    """Delete the feature at the version named by If-Match; references to it are cleared."""
    spec = _editable(layer, principal)
    _row_id(spec, item_id)
    wanted = _wanted(if_match)
    try:
        with request.app.state.engine.begin() as conn:
            audit_context(conn, principal, request_source(request))
            current = _locked(conn, spec, item_id, wanted)
            check_in_grids(conn, principal, [current.wkb])
            delete_feature(conn, spec, current.id)
    except (IntegrityError, DataError) as exc:
        raise _database_refusal(exc) from exc
    return Response(status_code=204)


@router.get(
    f"{ITEM}/history",
    summary="Who changed a feature, when, through what, from what to what",
    response_model=FeatureHistory,
    responses={401: {}, 404: {}},
)
def item_history(
    request: Request, principal: User, layer: LayerId, item_id: ItemId
) -> FeatureHistory:
    """The audit trail of one feature, newest first (signed-in users, whatever the read setting)."""
    spec = _layer(layer)
    row_id = _row_id(spec, item_id)
    with request.app.state.engine.connect() as conn:
        changes = feature_history(conn, spec.id, row_id)
        if not changes and not feature_exists(conn, spec, row_id):
            raise ApiProblem(404, f"no feature {item_id} in {spec.id}, and none recorded")
    return FeatureHistory(layer=spec.id, id=row_id, changes=changes)
