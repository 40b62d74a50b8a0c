"""The web UI's login session: the login JWT in a cookie, for what a browser navigates to.

A browser cannot send `Authorization` when it follows a link (the map, a grid's print
sheet, the OGC HTML pages), so the same short-lived JWT that `POST /auth/token` returns
also travels in a cookie. The cookie is HttpOnly (scripts cannot read it), SameSite=Strict
(no other site's page can make the browser send it) and Secure over HTTPS, and it is
accepted on GET and HEAD only: every write still needs the bearer header, so a forged
form can never write with it.
"""

from __future__ import annotations

from urllib.parse import quote, urlsplit

from fastapi import FastAPI, Request, Response
from fastapi.responses import RedirectResponse

SESSION_COOKIE = "civic_gis_session"
LOGIN_PATH = "/login"
DEFAULT_NEXT = "/map"
SAFE_METHODS = frozenset({"GET", "HEAD"})


def session_token(request: Request) -> str | None:
    """The session cookie's JWT, on a safe method only."""
    if request.method not in SAFE_METHODS:
        return None
    value = request.cookies.get(SESSION_COOKIE, "").strip()
    return value or None


def set_session(request: Request, response: Response, token: str, seconds: int) -> None:
    """Attach the login JWT as the session cookie, living as long as the JWT."""
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=seconds,
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


def clear_session(request: Request, response: Response) -> None:
    """Expire the session cookie (logging out)."""
    response.delete_cookie(
        SESSION_COOKIE,
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


def safe_next(target: str | None) -> str:
    """Where to go after logging in: a path of this service, never another site.

    `//host/x`, `/\\host`, `https://host` and anything not starting with one `/` would let
    a crafted login link send the user elsewhere (an open redirect): they become `/map`.
    """
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return DEFAULT_NEXT
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or any(c in target for c in "\r\n\t\\"):
        return DEFAULT_NEXT
    return target


def login_url(request: Request, reason: str | None = None) -> str:
    """The login page, asked to come back to this request's page afterwards."""
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    url = f"{request.scope.get('root_path', '')}{LOGIN_PATH}?next={quote(here, safe='')}"
    lang = request.query_params.get("lang")
    if lang == "en":
        url += "&lang=en"
    if reason:
        url += f"&reason={reason}"
    return url


def wants_page(request: Request) -> bool:
    """A browser navigating (it asks for HTML), not a script or GIS client asking for data."""
    if request.method not in SAFE_METHODS:
        return False
    if request.query_params.get("f") not in (None, "html"):
        return False
    return "text/html" in request.headers.get("accept", "")


class LoginRedirect(Exception):
    """Raised instead of a 401 when a browser navigates: send it to the login page."""

    def __init__(self, url: str, clear_cookie: bool) -> None:
        super().__init__(url)
        self.url = url
        self.clear_cookie = clear_cookie


def install(app: FastAPI) -> None:
    """Answer `LoginRedirect` with 303 to the login page (expiring a dead session cookie)."""

    @app.exception_handler(LoginRedirect)
    async def _to_login(request: Request, exc: LoginRedirect) -> RedirectResponse:
        response = RedirectResponse(exc.url, status_code=303)
        if exc.clear_cookie:
            clear_session(request, response)
        return response
