"""Users, roles, grid-scoped rights and the audit trail (issue 7).

The contract other modules build on (uploads, edits):

- `Principal`: the authenticated user (user_id, name, role, grid_codes);
- dependencies `current_principal` (reads), `require_user`, `require_writer`,
  `require_role(*roles)`, and the `Reader`, `User`, `Writer` annotations;
- `check_in_grids(conn, principal, geometries)`: 403 naming the grid when an
  inspector's write touches anything outside his grids;
- `audit_context(conn, principal, source)`: name the writer of the transaction
  for the audit triggers; `request_source(request)` is the source of an HTTP write.
"""

from __future__ import annotations

from fastapi import Request

from gis_api.auth.audit import audit_context, audit_source
from gis_api.auth.dependencies import (
    Reader,
    User,
    Writer,
    authenticated,
    current_principal,
    require_role,
    require_user,
    require_writer,
)
from gis_api.auth.grids import check_in_grids
from gis_api.auth.principal import ROLES, Principal, Role


def request_source(request: Request) -> str:
    """The audit source of an HTTP write: request id, method and path."""
    request_id = getattr(request.state, "request_id", "-")
    return f"request:{request_id} {request.method} {request.url.path}"


__all__ = [
    "ROLES",
    "Principal",
    "Reader",
    "Role",
    "User",
    "Writer",
    "audit_context",
    "audit_source",
    "authenticated",
    "check_in_grids",
    "current_principal",
    "request_source",
    "require_role",
    "require_user",
    "require_writer",
]
