"""FastAPI dependencies: who is asking, and may they.

Credentials are `Authorization: Bearer <token>`, where the token is an API
token (`cgis_...`, from `civic-gis user add | rotate-token`) or a login JWT from
`POST /auth/token`; or, on GET and HEAD only, the web UI's session cookie holding
that JWT (gis_api.auth.session: HttpOnly, SameSite=Strict). Nothing is read from
query strings, so tokens never reach access logs, and no write is ever
authorised by a cookie, so a cross-site form cannot write.

A browser navigating to a page without a valid session is sent to `/login`
(303) instead of being shown a 401 it cannot answer.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer, OAuth2PasswordBearer

from gis_api.auth.credentials import TOKEN_PREFIX, decode_access_token
from gis_api.auth.principal import WRITER_ROLES, Principal, Role
from gis_api.auth.session import LoginRedirect, login_url, session_token, wants_page
from gis_api.auth.users import principal_by_id, principal_by_token
from gis_api.problems import ApiProblem

# Declared for the OpenAPI description (and Swagger UI's "Authorize"); the header
# itself is read in `_credentials`, which also refuses non-Bearer schemes.
_oauth2 = OAuth2PasswordBearer(
    tokenUrl="auth/token",
    auto_error=False,
    description="Web login: user name and password for a 15-minute JWT.",
)
_bearer = HTTPBearer(
    auto_error=False,
    description="An API token from `civic-gis user add` or `civic-gis user rotate-token`.",
)


def unauthorized(detail: str, invalid_token: bool = False) -> ApiProblem:
    """401 with the challenge RFC 6750 asks for."""
    challenge = 'Bearer realm="civic-gis"'
    if invalid_token:
        challenge += ', error="invalid_token"'
    return ApiProblem(401, detail, headers={"WWW-Authenticate": challenge})


async def _credentials(
    request: Request,
    _oauth: Annotated[str | None, Depends(_oauth2)],
    _http: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> str | None:
    header = request.headers.get("authorization")
    if header is None:
        return session_token(request)
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise unauthorized("send credentials as `Authorization: Bearer <token>`")
    return value.strip()


def _principal_of(state: Any, token: str) -> Principal | None:
    """The enabled user an API token or login JWT names (database and argon2: blocking)."""
    with state.engine.connect() as conn:
        if token.startswith(TOKEN_PREFIX):
            return principal_by_token(conn, token, state.verified_tokens)
        user_id = decode_access_token(state.jwt_key, token)
        return None if user_id is None else principal_by_id(conn, user_id)


async def authenticated(
    request: Request, token: Annotated[str | None, Depends(_credentials)]
) -> Principal | None:
    """The user the request's token names; None without one; 401 for a bad token.

    FastAPI caches it per request, so stacked dependencies resolve the token once. The
    dependencies are `async` so an anonymous read costs no thread hop; only the token
    lookup goes to the thread pool.
    """
    if token is None:
        return None
    principal = await run_in_threadpool(_principal_of, request.app.state, token)
    if principal is None:
        if wants_page(request):
            raise LoginRedirect(login_url(request, "expired"), clear_cookie=True)
        raise unauthorized("the token is invalid, expired or revoked", invalid_token=True)
    request.state.principal = principal
    return principal


async def current_principal(
    request: Request, principal: Annotated[Principal | None, Depends(authenticated)]
) -> Principal | None:
    """The reader: None when anonymous and reads are public; 401 when they are not."""
    if principal is None and not request.app.state.settings.auth_public_reads:
        if wants_page(request):
            raise LoginRedirect(login_url(request, "required"), clear_cookie=False)
        raise unauthorized("authentication required: reads are not public on this service")
    return principal


async def require_user(principal: Annotated[Principal | None, Depends(authenticated)]) -> Principal:
    """Any signed-in, enabled user; 401 otherwise, whatever the read setting."""
    if principal is None:
        raise unauthorized("authentication required")
    return principal


def require_role(*roles: Role) -> Callable[[Principal], Awaitable[Principal]]:
    """A dependency admitting only `roles` (403 for the others)."""
    allowed = ", ".join(roles)

    async def dependency(principal: Annotated[Principal, Depends(require_user)]) -> Principal:
        if principal.role not in roles:
            raise ApiProblem(
                403, f"{principal.name} is a {principal.role}; this needs one of: {allowed}"
            )
        return principal

    return dependency


require_writer = require_role(*WRITER_ROLES)
"""Inspectors, planners and admins; leaders read and report but never write."""

Reader = Annotated[Principal | None, Depends(current_principal)]
User = Annotated[Principal, Depends(require_user)]
Writer = Annotated[Principal, Depends(require_writer)]
