"""`/api.html`: Swagger UI served from the swagger-ui-bundle package, never a CDN."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

router = APIRouter()
STATIC = "/static/swagger-ui"


@router.get("/api.html", include_in_schema=False)
def api_html() -> HTMLResponse:
    """Interactive API documentation."""
    return get_swagger_ui_html(
        openapi_url="/api",
        title="civic-gis API",
        swagger_js_url=f"{STATIC}/swagger-ui-bundle.js",
        swagger_css_url=f"{STATIC}/swagger-ui.css",
        swagger_favicon_url=f"{STATIC}/favicon-32x32.png",
    )


def install(app: FastAPI) -> None:
    """Mount the Swagger UI files and the page."""
    app.mount(STATIC, StaticFiles(directory=swagger_ui_path), name="swagger-ui")
    app.include_router(router)
