"""HTML pages of the OGC API: Jinja templates with Chinese labels by default."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from gis_api.ogc.negotiate import language

TEMPLATES = Jinja2Templates(directory=Path(__file__).parents[1] / "templates" / "ogc")

TEXT: dict[str, dict[str, str]] = {
    "zh": {
        "service": "文明城市创建 GIS 服务",
        "collections": "数据集",
        "conformance": "符合性类别",
        "items": "要素",
        "queryables": "可查询属性",
        "tiles": "矢量瓦片",
        "matched": "匹配",
        "returned": "本页",
        "next": "下一页",
        "prev": "上一页",
        "property": "属性",
        "value": "值",
        "type": "类型",
        "json": "JSON",
        "other_lang": "English",
        "extent": "范围",
        "id": "编号",
        "geometry": "几何",
    },
    "en": {
        "service": "Civilized-city inspection GIS",
        "collections": "Collections",
        "conformance": "Conformance classes",
        "items": "Features",
        "queryables": "Queryables",
        "tiles": "Vector tiles",
        "matched": "matched",
        "returned": "on this page",
        "next": "Next",
        "prev": "Previous",
        "property": "Property",
        "value": "Value",
        "type": "Type",
        "json": "JSON",
        "other_lang": "中文",
        "extent": "Extent",
        "id": "Id",
        "geometry": "Geometry",
    },
}


def label(spec: Any, name: str, lang: str) -> str:
    """A property's label in the page language (catalog field, else its name)."""
    try:
        field = spec.field(name)
    except KeyError:
        return {"code": "编码" if lang == "zh" else "code"}.get(name, name)
    return str(field.zh if lang == "zh" else field.en)


def render(
    request: Request,
    name: str,
    context: dict[str, Any],
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    """Render an OGC page in the request's language."""
    lang = language(request)
    page: HTMLResponse = TEMPLATES.TemplateResponse(
        request,
        name,
        {**context, "lang": lang, "t": TEXT[lang], "label": label},
        headers=headers,
    )
    return page
