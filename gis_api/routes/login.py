"""`GET /login`: the web UI's login page (public, like `/auth/token` itself).

Browsers are sent here (303) when they navigate to a page without a valid session; the
page posts to `POST /auth/session` and goes back to where the user was going.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from gis_api.auth.session import safe_next
from gis_api.ogc.negotiate import language
from gis_api.ogc.params import reject_unknown
from map_ui.page import script_json

router = APIRouter(tags=["authentication"])
TEMPLATES = Jinja2Templates(directory=Path(__file__).parents[1] / "templates")
PARAMS = ("next", "lang", "reason")
REASONS = ("expired", "required", "logout")

TEXT = {
    "zh": {
        "title": "文明城市创建巡查地图 · 登录",
        "username": "用户名",
        "password": "密码",
        "submit": "登录",
        "other_lang": "English",
        "checking": "正在登录…",
        "wrong": "用户名或密码错误",
        "too_many": "登录尝试次数过多，请 {s} 秒后再试",
        "failed": "登录失败，请稍后再试",
        "expired": "登录已过期，请重新登录",
        "required": "请先登录",
        "logout": "已退出登录",
    },
    "en": {
        "title": "Civilized-city inspection map · Log in",
        "username": "User name",
        "password": "Password",
        "submit": "Log in",
        "other_lang": "中文",
        "checking": "Logging in…",
        "wrong": "Wrong user name or password",
        "too_many": "Too many login attempts: try again in {s} s",
        "failed": "Login failed, please try again later",
        "expired": "Your session has expired: please log in again",
        "required": "Please log in first",
        "logout": "You have logged out",
    },
}


@router.get("/login", response_class=HTMLResponse, summary="The web UI's login page")
def login_page(request: Request) -> HTMLResponse:
    """A user name and password form (中文; `?lang=en` for English)."""
    reject_unknown(request.query_params, PARAMS)
    lang = language(request)
    text = TEXT[lang]
    target = safe_next(request.query_params.get("next"))
    reason = request.query_params.get("reason")
    notice = text[reason] if reason is not None and reason in REASONS else ""
    root = request.scope.get("root_path", "")
    other = {"next": target} | ({} if lang == "en" else {"lang": "en"})
    script_text = {k: text[k] for k in ("checking", "wrong", "too_many", "failed")}
    script_text["next"] = root + target
    return TEMPLATES.TemplateResponse(
        request,
        "login.html",
        {
            "lang": lang,
            "t": text,
            "notice": notice,
            "session_url": f"{root}/auth/session",
            "other_lang_url": f"{root}/login?{urlencode(other)}",
            "script_text": script_json(script_text),
        },
        headers={"Cache-Control": "no-store"},
    )
