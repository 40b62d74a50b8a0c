"""Who is asking: the authenticated user as every permission check sees it."""

from __future__ import annotations

from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict

Role = Literal["inspector", "planner", "leader", "admin"]
ROLES: tuple[Role, ...] = get_args(Role)
WRITER_ROLES: tuple[Role, ...] = ("inspector", "planner", "admin")
"""Leaders read and report; they never write."""
GRID_SCOPED_ROLES: tuple[Role, ...] = ("inspector",)
"""Roles whose writes must lie in their own grids; planners and admins write anywhere."""


class Principal(BaseModel):
    """An authenticated user, loaded fresh from the database on every request.

    Fresh because a disabled user or a changed role must take effect at once,
    not when a token expires.
    """

    model_config = ConfigDict(frozen=True)

    user_id: int
    name: str
    role: Role
    grid_codes: tuple[str, ...] = ()

    @property
    def can_write(self) -> bool:
        """Whether the role may change layers at all."""
        return self.role in WRITER_ROLES

    @property
    def grid_scoped(self) -> bool:
        """Whether writes are limited to the user's grids."""
        return self.role in GRID_SCOPED_ROLES
