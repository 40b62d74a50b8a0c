"""The landing page: what the service holds, in Chinese by default."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from fastapi.templating import Jinja2Templates

from gis_api.ogc.features import landing_document
from gis_api.ogc.negotiate import negotiate
from gis_api.ogc.params import reject_unknown
from layers.catalog import CATALOG
from layers.queries import layer_counts

router = APIRouter()
templates = Jinja2Templates(directory=Path(__file__).parents[1] / "templates")

TEXT = {
    "zh": {
        "title": "文明城市创建 GIS 巡查服务",
        "intro": "图层、覆盖检查与网格考核",
        "other": "English",
        "layers": "图层",
        "layer": "图层",
        "count": "要素数",
        "profile": "规则配置",
        "collections": "数据集 (OGC API)",
    },
    "en": {
        "title": "Civilized-city inspection GIS",
        "intro": "Layers, coverage checks, grid scorecards",
        "other": "中文",
        "layers": "Layers",
        "layer": "Layer",
        "count": "Features",
        "profile": "Rule profile",
        "collections": "Collections (OGC API)",
    },
}


@router.get("/", tags=["service"], summary="Landing page (OGC API)")
def landing(
    request: Request,
    lang: Literal["zh", "en"] = Query("zh"),
    f: Literal["json", "html"] | None = Query(None, description="json or html"),
) -> Response:
    """OGC landing document for clients; for people, every layer with its feature count."""
    reject_unknown(request.query_params, ("f", "lang"))
    if negotiate(request) == "json":
        return Response(orjson.dumps(landing_document(request)), media_type="application/json")
    counts = layer_counts(request.app.state.engine)
    layers = [
        {"id": spec.id, "label": spec.zh if lang == "zh" else spec.en, "count": counts[spec.id]}
        for spec in CATALOG
    ]
    return templates.TemplateResponse(
        request,
        "landing.html",
        {
            "lang": lang,
            "t": TEXT[lang],
            "layers": layers,
            "profile": request.app.state.profile.name,
        },
    )
