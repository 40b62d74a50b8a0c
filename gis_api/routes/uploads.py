"""`POST /uploads` and `GET /uploads/{id}`: field files from GPS units and phones.

The multipart body is parsed only after authentication and after the declared length has
been checked against the profile's limit (413), so neither an anonymous client nor an
oversized file makes the service read it.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from starlette.datastructures import UploadFile

from gis_api.auth import User, Writer, request_source
from gis_api.problems import ApiProblem
from gis_api.uploads import get_report, run_upload
from layers.catalog import CATALOG
from layers.field_store import UploadMeta, sha256_hex
from layers.profile import RuleProfile

router = APIRouter(tags=["Field uploads"])

FORM_SLACK = 64 * 1024
"""Room for the multipart envelope and the small fields beside the file."""
TEXT_FIELDS = ("crs", "kind", "layer", "note", "partial")
MAX_TEXT = 2000

_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        "crs": {
                            "type": "string",
                            "description": "EPSG:4326 (default), GCJ-02, BD-09, EPSG:4490",
                        },
                        "kind": {"type": "string", "description": "kind of points without one"},
                        "layer": {"type": "string", "description": "layer a bare kind refers to"},
                        "note": {"type": "string"},
                        "partial": {"type": "boolean"},
                    },
                }
            }
        },
    }
}


def _flag(value: str | None) -> bool:
    if value is None:
        return False
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("", "0", "false", "no", "off"):
        return False
    raise ApiProblem(400, f"partial: {value!r} is not true or false")


def _text(form: Any, name: str) -> str | None:
    value = form.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ApiProblem(400, f"{name}: must be a text field, not a file")
    value = value.strip()
    if len(value) > MAX_TEXT:
        raise ApiProblem(400, f"{name}: longer than {MAX_TEXT} characters")
    return value or None


@router.post(
    "/uploads",
    status_code=201,
    summary="Upload a field file (GPX, KML/KMZ, GeoJSON, CSV, NMEA, JPEG)",
    openapi_extra=_BODY,
    responses={
        200: {"description": "the same file or Idempotency-Key was stored before: its report"},
        400: {"description": "the file cannot be read"},
        401: {"description": "no or bad credentials"},
        403: {"description": "a point or matched asset lies outside the inspector's grids"},
        409: {"description": "Idempotency-Key reused for a different file"},
        413: {"description": "file over the profile's size limit"},
        415: {"description": "not multipart, or not an accepted format"},
        422: {"description": "points refused (every one listed); send partial=true"},
    },
)
async def post_upload(
    request: Request,
    principal: Writer,
    partial: Annotated[bool | None, Query(description="store the valid points")] = None,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)] = None,
) -> JSONResponse:
    """Store a field file in one transaction and answer its report (201, or 200 on replay)."""
    profile: RuleProfile = request.app.state.profile
    limit = profile.field.max_upload_bytes
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("multipart/form-data"):
        raise ApiProblem(415, "send the file as multipart/form-data with a `file` part")
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit + FORM_SLACK:
        raise ApiProblem(413, f"upload is {int(length):,} bytes, over the limit of {limit:,} bytes")
    async with request.form(max_files=1, max_fields=len(TEXT_FIELDS)) as form:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise ApiProblem(400, "file: missing (a multipart part named `file` is required)")
        raw = await upload.read(limit + 1)
        if len(raw) > limit:
            raise ApiProblem(413, f"file is over the upload limit of {limit:,} bytes")
        filename = upload.filename
        crs, kind, layer, note = (_text(form, n) for n in ("crs", "kind", "layer", "note"))
        want_partial = bool(partial) or _flag(_text(form, "partial"))
    if layer is not None and layer not in CATALOG.ids():
        raise ApiProblem(400, f"layer: unknown layer {layer!r}; known: {', '.join(CATALOG.ids())}")
    meta = UploadMeta(
        sha256=sha256_hex(raw),
        size=len(raw),
        filename=filename,
        declared_crs=crs,
        kind=kind,
        layer=layer,
        note=note,
        idempotency_key=(idempotency_key or "").strip() or None,
        uploader_id=principal.user_id,
        uploader_name=principal.name,
        source="http",
    )
    outcome = await run_in_threadpool(
        run_upload,
        request.app.state.engine,
        raw,
        meta,
        principal,
        profile,
        partial=want_partial,
        audit=request_source(request),
    )
    report_id = outcome.report["id"]
    headers = {"Location": f"/uploads/{report_id}"}
    if outcome.replayed:
        headers["Idempotent-Replayed"] = "true"
    return JSONResponse(
        outcome.report, status_code=200 if outcome.replayed else 201, headers=headers
    )


@router.get("/uploads/{upload_id}", summary="The report of an upload")
async def get_upload(
    request: Request, _: User, upload_id: Annotated[int, Path(ge=1, le=2**62)]
) -> JSONResponse:
    """The report as it was answered when the upload was stored."""
    report = await run_in_threadpool(get_report, request.app.state.engine, upload_id)
    if report is None:
        raise ApiProblem(404, f"no upload {upload_id}")
    return JSONResponse(report)
