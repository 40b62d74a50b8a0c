"""The landing page: what the service holds, in Chinese by default."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

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
    },
    "en": {
        "title": "Civilized-city inspection GIS",
        "intro": "Layers, coverage checks, grid scorecards",
        "other": "中文",
        "layers": "Layers",
        "layer": "Layer",
        "count": "Features",
        "profile": "Rule profile",
    },
}


@router.get("/", response_class=HTMLResponse, tags=["service"])
def landing(request: Request, lang: Literal["zh", "en"] = Query("zh")) -> HTMLResponse:
    """Landing page listing every layer with its feature count."""
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
