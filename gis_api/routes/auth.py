"""`POST /auth/token` (OAuth2 password flow), the web UI's session (`POST /auth/session`,
`POST /auth/logout`) and `GET /auth/me`."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Form, Request, Response
from pydantic import BaseModel

from gis_api.auth import Principal, User
from gis_api.auth.credentials import encode_access_token
from gis_api.auth.session import clear_session, set_session
from gis_api.auth.users import authenticate
from gis_api.problems import ApiProblem

router = APIRouter(prefix="/auth", tags=["authentication"])
MAX_FIELD = 1024


class AccessToken(BaseModel):
    """RFC 6749 token response: a short-lived bearer JWT."""

    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 (RFC 6749 token type)
    expires_in: int


def _issue_token(request: Request, username: str, password: str) -> AccessToken:
    """Check the password (rate-limited per user and address) and sign a login JWT."""
    state = request.app.state
    address = request.client.host if request.client else "unknown"
    wait = state.login_limiter.attempt(username, address)
    if wait is not None:
        raise ApiProblem(
            429,
            f"too many login attempts: try again in {wait} s",
            headers={"Retry-After": str(wait)},
        )
    with state.engine.begin() as conn:
        principal = authenticate(conn, username, password)
    if principal is None:
        # RFC 6749 §5.2; the same answer for an unknown user, a wrong password, a disabled user.
        raise ApiProblem(400, "wrong user name or password", error="invalid_grant")
    minutes = state.settings.access_token_minutes
    return AccessToken(
        access_token=encode_access_token(state.jwt_key, principal.user_id, minutes),
        expires_in=60 * minutes,
    )


Username = Annotated[str, Form(min_length=1, max_length=MAX_FIELD)]
Password = Annotated[str, Form(min_length=1, max_length=MAX_FIELD)]


@router.post(
    "/token",
    response_model=AccessToken,
    summary="Log in with a user name and password (OAuth2 password flow)",
    responses={400: {"description": "wrong user name or password"}, 429: {}},
)
def login(
    request: Request,
    username: Username,
    password: Password,
    grant_type: Annotated[str | None, Form(pattern="^password$")] = None,
    scope: Annotated[str, Form(max_length=MAX_FIELD)] = "",
) -> AccessToken:
    """A JWT valid for `access_token_minutes` (15 by default); rate-limited per user and address.

    Users get passwords from `civic-gis user add NAME --password-stdin`.
    """
    return _issue_token(request, username, password)


@router.post(
    "/session",
    response_model=AccessToken,
    summary="Log in from the web UI: the JWT, also set as the session cookie",
    responses={400: {"description": "wrong user name or password"}, 429: {}},
)
def open_session(
    request: Request, response: Response, username: Username, password: Password
) -> AccessToken:
    """What the login page posts. The page keeps the JWT for the tab (writes send it as a
    bearer header); the HttpOnly cookie lets the browser open the map and other pages."""
    token = _issue_token(request, username, password)
    set_session(request, response, token.access_token, token.expires_in)
    return token


@router.post("/logout", status_code=204, summary="End the web UI's session")
def close_session(request: Request) -> Response:
    """Expire the session cookie; the page forgets its copy of the JWT itself."""
    response = Response(status_code=204)
    clear_session(request, response)
    return response


@router.get("/me", response_model=Principal, summary="The user the request's token names")
def me(principal: User) -> Principal:
    """Name, role and grids of the caller: what the web UI shows and which edits it offers."""
    return principal
