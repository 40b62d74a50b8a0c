"""Users, their grids and tokens in the database; no HTTP here (the CLI and the API share it)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, func, insert, select, update

from gis_api.auth.credentials import (
    MIN_PASSWORD_LENGTH,
    VerifiedTokens,
    hash_password,
    issue_token,
    needs_rehash,
    split_token,
    verify_secret,
)
from gis_api.auth.principal import ROLES, Principal, Role
from layers import grid_codes
from layers.tables import METADATA

USERS = METADATA.tables["users"]
USER_GRIDS = METADATA.tables["user_grids"]
API_TOKENS = METADATA.tables["api_tokens"]
GRIDS = METADATA.tables["grids"]


class UserError(ValueError):
    """A user command that cannot be carried out (unknown user, bad role, ...)."""


@dataclass(frozen=True)
class UserInfo:
    """A user as `civic-gis user list` shows it (never a hash)."""

    name: str
    role: str
    grid_codes: tuple[str, ...]
    disabled: bool
    has_password: bool
    created_at: datetime
    token_issued_at: datetime | None


def _grid_codes_of(conn: Connection, user_id: int) -> tuple[str, ...]:
    rows = conn.execute(
        select(USER_GRIDS.c.grid_code)
        .where(USER_GRIDS.c.user_id == user_id)
        .order_by(USER_GRIDS.c.grid_code)
    )
    return tuple(r[0] for r in rows)


def _user_id(conn: Connection, name: str) -> int:
    found = conn.execute(select(USERS.c.id).where(USERS.c.name == name)).scalar_one_or_none()
    if found is None:
        raise UserError(f"no user called {name!r}")
    return int(found)


def _check_grids(conn: Connection, role: str, grid_codes_: Sequence[str]) -> tuple[str, ...]:
    codes = tuple(dict.fromkeys(c.strip() for c in grid_codes_))
    if role == "inspector" and not codes:
        raise UserError("an inspector needs at least one --grid CODE")
    if role != "inspector" and codes:
        raise UserError(f"only inspectors are bound to grids; a {role} changes every grid")
    for code in codes:
        if grid_codes.level_of(code) is None:
            raise UserError(f"{code!r} is not a 15-digit grid code")
    known = {r[0] for r in conn.execute(select(GRIDS.c.code).where(GRIDS.c.code.in_(codes)))}
    missing = [c for c in codes if c not in known]
    if missing:
        raise UserError(f"no grid with code {', '.join(missing)}: load the grids layer first")
    return codes


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise UserError(f"the password needs at least {MIN_PASSWORD_LENGTH} characters")


def add_user(
    conn: Connection,
    name: str,
    role: str,
    grid_codes_: Sequence[str] = (),
    password: str | None = None,
) -> str:
    """Create a user (with grids and an optional password); return its first API token."""
    name = name.strip()
    if not name:
        raise UserError("a user needs a name")
    if role not in ROLES:
        raise UserError(f"unknown role {role!r}; roles: {', '.join(ROLES)}")
    codes = _check_grids(conn, role, grid_codes_)
    if password is not None:
        _check_password(password)
    if conn.execute(select(USERS.c.id).where(USERS.c.name == name)).first() is not None:
        raise UserError(f"a user called {name!r} exists already")
    user_id = conn.execute(
        insert(USERS)
        .values(
            name=name,
            role=role,
            password_hash=hash_password(password) if password is not None else None,
        )
        .returning(USERS.c.id)
    ).scalar_one()
    if codes:
        conn.execute(insert(USER_GRIDS), [{"user_id": user_id, "grid_code": c} for c in codes])
    return _new_token(conn, int(user_id))


def _new_token(conn: Connection, user_id: int) -> str:
    issued = issue_token()
    conn.execute(
        insert(API_TOKENS).values(
            user_id=user_id, lookup=issued.lookup, secret_hash=issued.secret_hash
        )
    )
    return issued.token


def rotate_token(conn: Connection, name: str) -> str:
    """Revoke the user's tokens and issue a new one (the old stops working at once)."""
    user_id = _user_id(conn, name)
    conn.execute(
        update(API_TOKENS)
        .where(API_TOKENS.c.user_id == user_id, API_TOKENS.c.revoked_at.is_(None))
        .values(revoked_at=func.now())
    )
    return _new_token(conn, user_id)


def set_disabled(conn: Connection, name: str, disabled: bool = True) -> None:
    """Disable (or enable again) a user: every token and login is refused while disabled."""
    conn.execute(update(USERS).where(USERS.c.id == _user_id(conn, name)).values(disabled=disabled))


def list_users(conn: Connection) -> list[UserInfo]:
    """Every user, by name."""
    issued = (
        select(func.max(API_TOKENS.c.created_at))
        .where(API_TOKENS.c.user_id == USERS.c.id, API_TOKENS.c.revoked_at.is_(None))
        .scalar_subquery()
    )
    rows = conn.execute(
        select(
            USERS.c.id,
            USERS.c.name,
            USERS.c.role,
            USERS.c.disabled,
            USERS.c.password_hash.is_not(None),
            USERS.c.created_at,
            issued,
        ).order_by(USERS.c.name)
    ).all()
    return [UserInfo(r[1], r[2], _grid_codes_of(conn, r[0]), r[3], r[4], r[5], r[6]) for r in rows]


def _principal(conn: Connection, user_id: int, name: str, role: Role) -> Principal:
    return Principal(
        user_id=user_id, name=name, role=role, grid_codes=_grid_codes_of(conn, user_id)
    )


def principal_by_id(conn: Connection, user_id: int) -> Principal | None:
    """The enabled user with this id (a login JWT's subject), else None."""
    row = conn.execute(
        select(USERS.c.id, USERS.c.name, USERS.c.role).where(
            USERS.c.id == user_id, USERS.c.disabled.is_(False)
        )
    ).first()
    return None if row is None else _principal(conn, row[0], row[1], row[2])


def principal_by_token(
    conn: Connection, token: str, verified: VerifiedTokens | None = None
) -> Principal | None:
    """The enabled user an unrevoked API token belongs to, else None."""
    parts = split_token(token)
    if parts is None:
        return None
    lookup, secret = parts
    row = conn.execute(
        select(USERS.c.id, USERS.c.name, USERS.c.role, API_TOKENS.c.secret_hash)
        .join(API_TOKENS, API_TOKENS.c.user_id == USERS.c.id)
        .where(
            API_TOKENS.c.lookup == lookup,
            API_TOKENS.c.revoked_at.is_(None),
            USERS.c.disabled.is_(False),
        )
    ).first()
    if row is None:
        return None
    stored = str(row[3])
    if verified is None or not verified.known(token, stored):
        if not verify_secret(stored, secret):
            return None
        if verified is not None:
            verified.remember(token, stored)
    return _principal(conn, row[0], row[1], row[2])


def authenticate(conn: Connection, name: str, password: str) -> Principal | None:
    """The enabled user with this name and password, else None (same cost either way)."""
    row = conn.execute(
        select(USERS.c.id, USERS.c.name, USERS.c.role, USERS.c.password_hash).where(
            USERS.c.name == name, USERS.c.disabled.is_(False)
        )
    ).first()
    stored = None if row is None else row[3]
    if not verify_secret(stored, password) or row is None or stored is None:
        return None
    if needs_rehash(stored):
        conn.execute(
            update(USERS).where(USERS.c.id == row[0]).values(password_hash=hash_password(password))
        )
    return _principal(conn, row[0], row[1], row[2])


def set_password(conn: Connection, name: str, password: str) -> None:
    """Give a user a (new) password for the web login."""
    _check_password(password)
    conn.execute(
        update(USERS)
        .where(USERS.c.id == _user_id(conn, name))
        .values(password_hash=hash_password(password))
    )
