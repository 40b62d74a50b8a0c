"""The uploads tests' world: the tiny city with its four users, no earlier uploads, and a
client of a fresh app (modules that need another world override these fixtures)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from tests.access import Accounts, city_with_accounts
from tests.uploads.helpers import clear_uploads, client_for


@pytest.fixture
def accounts(engine: Engine, tmp_path: Path) -> Accounts:
    clear_uploads(engine)
    return city_with_accounts(engine, tmp_path)


@pytest.fixture
def client(database_url: str, accounts: Accounts, tmp_path: Path) -> Iterator[TestClient]:
    with client_for(database_url, tmp_path) as client:
        yield client
