"""Users and a loaded tiny city for the access and audit tests.

Accounts (tests/tiny_city.py grids): an admin, a planner, a leader, and the
inspector 王丹 bound to the west grid (x 0..200 m; lamps L-0000..L-0006).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, text

from data.importer import import_file
from gis_api.auth import users
from layers.catalog import CATALOG
from tests.conftest import truncate_layers
from tests.tiny_city import GRID_WEST, tiny_city, write_geojson

PASSWORD = "correct horse battery"
INSPECTOR = "王丹"


@dataclass(frozen=True)
class Accounts:
    """The API token of each test user (all have the password PASSWORD)."""

    admin: str
    planner: str
    leader: str
    inspector: str


def load_tiny_city(engine: Engine, folder: Path) -> None:
    """Empty every layer and import the tiny city through the import path."""
    truncate_layers(engine)
    city = tiny_city()
    for spec in CATALOG:
        import_file(engine, write_geojson(city[spec.id], folder / f"{spec.id}.geojson"), spec)


def clear_accounts(engine: Engine) -> None:
    """Drop every user, and the audit trail, which refers to them."""
    with engine.begin() as conn:
        conn.execute(text("TRUNCATE users, user_grids, api_tokens, audit_log RESTART IDENTITY"))


def city_with_accounts(engine: Engine, folder: Path) -> Accounts:
    """A fresh audit trail, the tiny city imported, and the four users (grids must exist)."""
    clear_accounts(engine)
    load_tiny_city(engine, folder)
    return add_accounts(engine)


def add_accounts(engine: Engine) -> Accounts:
    """Create the four test users."""
    with engine.begin() as conn:
        return Accounts(
            admin=users.add_user(conn, "admin", "admin", password=PASSWORD),
            planner=users.add_user(conn, "planner", "planner", password=PASSWORD),
            leader=users.add_user(conn, "leader", "leader", password=PASSWORD),
            inspector=users.add_user(conn, INSPECTOR, "inspector", [GRID_WEST], PASSWORD),
        )


def bearer(token: str) -> dict[str, str]:
    """The Authorization header for a token."""
    return {"Authorization": f"Bearer {token}"}


def feature_id(engine: Engine, layer: str, code: str) -> int:
    """The id of the feature with this code."""
    with engine.connect() as conn:
        return int(
            conn.execute(
                text(f'SELECT id FROM "{layer}" WHERE code = :code'), {"code": code}
            ).scalar_one()
        )
