"""Who may read and how one signs in: tokens, logins, limits and safe defaults.

Reads are closed unless CIVIC_GIS_AUTH_PUBLIC_READS is set; /health, the API
description and the login are always open.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import morecantile
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from gis_api.app import create_app
from gis_api.auth import users
from gis_api.settings import Settings
from tests.access import INSPECTOR, PASSWORD, Accounts, bearer, city_with_accounts

TMS = morecantile.tms.get("WebMercatorQuad")
READS = (
    "/",
    "/conformance",
    "/collections",
    "/collections/street_lamps/items",
    "/collections/street_lamps/queryables",
    "/tiles/WebMercatorQuad/tilejson.json",
    "/checks",
    "/map",
)
ALWAYS_OPEN = ("/health", "/api", "/api.html")


@pytest.fixture
def accounts(engine: Engine, tmp_path: Path) -> Accounts:
    return city_with_accounts(engine, tmp_path)


def app_client(database_url: str, tmp_path: Path, **settings: Any) -> TestClient:
    return TestClient(
        create_app(Settings(database_url=database_url, state_dir=tmp_path / "state", **settings))
    )


@pytest.fixture
def client(database_url: str, accounts: Accounts, tmp_path: Path) -> Iterator[TestClient]:
    with app_client(database_url, tmp_path) as client:
        yield client


def login(client: TestClient, name: str, password: str) -> Any:
    return client.post("/auth/token", data={"username": name, "password": password})


def test_reads_need_a_user_by_default_except_health_and_the_api_description(
    client: TestClient, accounts: Accounts
) -> None:
    for path in READS:
        response = client.get(path)
        assert response.status_code == 401, path
        assert response.headers["WWW-Authenticate"].startswith("Bearer"), path
    for path in ALWAYS_OPEN:
        assert client.get(path).status_code == 200, path
    for path in READS[:-1]:  # the map page needs its scripts, present or not on this machine
        assert client.get(path, headers=bearer(accounts.leader)).status_code == 200, path
    spec = client.get("/api").json()
    assert {"OAuth2PasswordBearer", "HTTPBearer"} <= set(spec["components"]["securitySchemes"])


def test_reads_are_public_when_configured_but_writes_never_are(
    database_url: str, accounts: Accounts, tmp_path: Path
) -> None:
    with app_client(database_url, tmp_path, auth_public_reads=True) as client:
        for path in READS[:-1]:
            assert client.get(path).status_code == 200, path
        # A bad token is refused even where no token is needed: it is a mistake to report.
        assert client.get("/collections", headers=bearer("cgis_bad")).status_code == 401
        etag = client.get("/collections/street_lamps/items/1").headers["ETag"]
        write = client.patch(
            "/collections/street_lamps/items/1", json={}, headers={"If-Match": etag}
        )
        assert write.status_code == 401
        assert client.get("/collections/street_lamps/items/1/history").status_code == 401


def test_a_password_login_gives_a_short_lived_jwt(
    client: TestClient, accounts: Accounts, engine: Engine
) -> None:
    response = login(client, INSPECTOR, PASSWORD)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "bearer" and body["expires_in"] == 15 * 60
    me = client.get("/auth/me", headers=bearer(body["access_token"])).json()
    assert me["name"] == INSPECTOR and me["role"] == "inspector"
    assert me["grid_codes"] == ["231005001001001"]

    wrong = login(client, INSPECTOR, "not the password")
    unknown = login(client, "nobody", PASSWORD)
    for refused in (wrong, unknown):
        assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant"
    assert wrong.json()["detail"] == unknown.json()["detail"]

    key = client.app.state.jwt_key  # type: ignore[attr-defined]
    now = int(time.time())
    expired = jwt.encode(
        {"sub": str(me["user_id"]), "iat": now - 7200, "exp": now - 3600, "typ": "access"},
        key,
        algorithm="HS256",
    )
    forged = jwt.encode(
        {"sub": str(me["user_id"]), "iat": now, "exp": now + 600, "typ": "access"},
        b"x" * 48,
        algorithm="HS256",
    )
    for token in (expired, forged):
        refused_token = client.get("/auth/me", headers=bearer(token))
        assert refused_token.status_code == 401
        assert 'error="invalid_token"' in refused_token.headers["WWW-Authenticate"]

    with engine.begin() as conn:
        users.set_disabled(conn, INSPECTOR)
    assert client.get("/auth/me", headers=bearer(body["access_token"])).status_code == 401
    assert client.get("/auth/me", headers=bearer(accounts.inspector)).status_code == 401
    assert login(client, INSPECTOR, PASSWORD).status_code == 400


def test_logins_are_rate_limited_per_user_and_address(
    client: TestClient, accounts: Accounts
) -> None:
    for _ in range(5):
        assert login(client, "planner", "guess").status_code == 400
    limited = login(client, "planner", PASSWORD)  # even the right password must wait
    assert limited.status_code == 429, limited.text
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    assert login(client, "admin", PASSWORD).status_code == 200  # another user is not held up


def test_rotating_a_token_invalidates_the_old_one_at_once(
    client: TestClient, accounts: Accounts, engine: Engine
) -> None:
    old = accounts.planner
    assert client.get("/auth/me", headers=bearer(old)).status_code == 200  # now verified and cached
    with engine.begin() as conn:
        new = users.rotate_token(conn, "planner")
    assert client.get("/auth/me", headers=bearer(old)).status_code == 401
    assert client.get("/auth/me", headers=bearer(new)).json()["name"] == "planner"
    lookup, secret = old[len("cgis_") :].split("_", 1)
    tampered = f"cgis_{lookup}_{secret[:-1]}{'A' if secret[-1] != 'A' else 'B'}"
    assert client.get("/auth/me", headers=bearer(tampered)).status_code == 401


def test_passwords_and_tokens_never_appear_in_logs_responses_or_the_database(
    client: TestClient, accounts: Accounts, engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.INFO, logger="sqlalchemy.engine")  # statements and parameters
    answers = [
        login(client, "admin", PASSWORD),
        login(client, "admin", PASSWORD + "x"),
        login(client, "admin", ""),
    ]
    jwt_token = answers[0].json()["access_token"]
    for token in (accounts.admin, accounts.inspector, jwt_token, accounts.admin + "x"):
        headers = bearer(token)
        answers += [
            client.get("/auth/me", headers=headers),
            client.get("/collections/street_lamps/items/1", headers=headers),
            client.get("/collections/street_lamps/items/99", headers=headers),
            client.patch("/collections/street_lamps/items/1", json={}, headers=headers),
            client.patch(
                "/collections/street_lamps/items/1",
                json={"properties": {"status": "lit"}},
                headers={**headers, "If-Match": '"street_lamps-1-v1"'},
            ),
            client.get("/collections/street_lamps/items/1/history", headers=headers),
        ]
    secrets = [PASSWORD, accounts.admin, accounts.inspector]
    secrets += [t.split("_", 2)[2] for t in (accounts.admin, accounts.inspector)]
    for response in answers:
        shown = response.text + repr(dict(response.headers))
        for secret in secrets:
            assert secret not in shown, response.request.url
    logged = caplog.text + repr([r.args for r in caplog.records])
    assert {r.name.split(".")[0] for r in caplog.records} >= {"httpx", "sqlalchemy"}
    for secret in [*secrets, jwt_token]:
        assert secret not in logged
    with engine.connect() as conn:
        stored = conn.execute(
            text(
                "SELECT password_hash, secret_hash, lookup FROM users JOIN api_tokens t "
                "ON t.user_id = users.id WHERE name = 'admin'"
            )
        ).one()
    assert stored.password_hash.startswith("$argon2id$") and PASSWORD not in stored.password_hash
    assert stored.secret_hash.startswith("$argon2id$")
    assert accounts.admin.split("_", 2)[2] not in stored.secret_hash
    assert accounts.admin.startswith(f"cgis_{stored.lookup}_")


def test_cors_is_closed_by_default_and_opens_only_to_configured_origins(
    database_url: str, accounts: Accounts, tmp_path: Path
) -> None:
    preflight = {
        "Origin": "https://evil.example",
        "Access-Control-Request-Method": "PATCH",
        "Access-Control-Request-Headers": "authorization,if-match",
    }
    with app_client(database_url, tmp_path) as closed:
        answer = closed.options("/collections/street_lamps/items/1", headers=preflight)
        assert "access-control-allow-origin" not in answer.headers
        read = closed.get("/health", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in read.headers
    origin = "https://gis.mudanjiang.example"
    with app_client(database_url, tmp_path, cors_origins=[origin]) as open_:
        allowed = open_.options(
            "/collections/street_lamps/items/1", headers={**preflight, "Origin": origin}
        )
        assert allowed.status_code == 200
        assert allowed.headers["access-control-allow-origin"] == origin
        assert "authorization" in allowed.headers["access-control-allow-headers"].lower()
        assert "access-control-allow-credentials" not in allowed.headers
        other = open_.options("/collections/street_lamps/items/1", headers=preflight)
        assert "access-control-allow-origin" not in other.headers
        read = open_.get("/health", headers={"Origin": origin})
        assert read.headers["access-control-allow-origin"] == origin
        assert "ETag" in read.headers["access-control-expose-headers"]


def test_an_oversized_body_gets_413_and_writes_nothing(
    database_url: str, accounts: Accounts, tmp_path: Path, engine: Engine
) -> None:
    big = {"properties": {"status": "unlit", "padding": "x" * 10_000}}
    with app_client(database_url, tmp_path, max_request_bytes=4096) as client:
        etag = client.get(
            "/collections/street_lamps/items/1", headers=bearer(accounts.admin)
        ).headers["ETag"]
        headers = {**bearer(accounts.admin), "If-Match": etag}
        declared = client.patch("/collections/street_lamps/items/1", json=big, headers=headers)
        assert declared.status_code == 413, declared.text
        assert declared.headers["content-type"].startswith("application/problem+json")

        def chunks() -> Iterator[bytes]:
            yield b'{"properties": {"padding": "'
            for _ in range(10):
                yield b"x" * 1000
            yield b'"}}'

        streamed = client.patch(
            "/collections/street_lamps/items/1",
            content=chunks(),
            headers={**headers, "Content-Type": "application/json"},
        )
        assert streamed.status_code == 413, streamed.text
        form = client.post("/auth/token", data={"username": "admin", "password": "p" * 10_000})
        assert form.status_code == 413
        small = client.patch(
            "/collections/street_lamps/items/1",
            json={"properties": {"status": "unlit"}},
            headers=headers,
        )
        assert small.status_code == 200
    with engine.connect() as conn:
        assert conn.execute(text("SELECT version FROM street_lamps WHERE id = 1")).scalar() == 2


def test_answers_to_authenticated_requests_are_never_publicly_cached(
    client: TestClient, accounts: Accounts
) -> None:
    tile = TMS.tile(129.601, 44.5805, 16)
    response = client.get(
        f"/collections/street_lamps/tiles/WebMercatorQuad/16/{tile.x}/{tile.y}",
        headers=bearer(accounts.leader),
    )
    assert response.status_code == 200, response.text
    assert "public" not in response.headers["Cache-Control"]
    assert "private" in response.headers["Cache-Control"]
    assert len(response.headers["X-Request-ID"]) >= 8
