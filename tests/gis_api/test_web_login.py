"""Signing in from a browser: the login page, the session cookie, and where it stops.

Reads are closed (the default). A browser that follows a link cannot send a bearer
header, so the login also sets an HttpOnly, SameSite=Strict cookie holding the same
short-lived JWT, good for GET and HEAD only: every write still needs the header.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from gis_api.app import create_app
from gis_api.auth.session import SESSION_COOKIE, safe_next
from gis_api.settings import Settings
from tests.access import INSPECTOR, PASSWORD, Accounts, city_with_accounts

BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
SCRIPT = {"Accept": "application/json"}


@pytest.fixture
def accounts(engine: Engine, tmp_path: Path) -> Accounts:
    return city_with_accounts(engine, tmp_path)


@pytest.fixture
def client(database_url: str, accounts: Accounts, tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(database_url=database_url, state_dir=tmp_path / "state")
    with TestClient(create_app(settings), follow_redirects=False) as client:
        yield client


def sign_in(client: TestClient, name: str = INSPECTOR, password: str = PASSWORD) -> str:
    """What the login page's script does; returns the JWT it keeps for the tab."""
    response = client.post(
        "/auth/session", data={"username": name, "password": password}, headers=SCRIPT
    )
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def test_a_browser_opening_the_map_signed_out_is_sent_to_the_login_page_and_back(
    client: TestClient,
) -> None:
    response = client.get("/map/grids/231005001001001?lang=en", headers=BROWSER)
    assert response.status_code == 303
    target = urlsplit(response.headers["location"])
    assert target.path == "/login"
    query = parse_qs(target.query)
    assert query["next"] == ["/map/grids/231005001001001?lang=en"]
    assert query["lang"] == ["en"]

    page = client.get(response.headers["location"])
    assert page.status_code == 200
    assert page.headers["cache-control"] == "no-store"
    assert "Log in" in page.text and 'autocomplete="current-password"' in page.text
    assert '"next":"/map/grids/231005001001001?lang=en"' in page.text


def test_the_login_page_is_chinese_by_default_and_names_why_it_is_shown(
    client: TestClient,
) -> None:
    page = client.get("/login?reason=expired")
    assert page.status_code == 200
    assert "用户名" in page.text and "密码" in page.text and "登录已过期，请重新登录" in page.text
    assert 'lang="zh-CN"' in page.text
    assert client.get("/login?user=x").status_code == 400
    assert client.get("/login?lang=fr").status_code == 400


def test_scripts_and_gis_clients_still_get_a_401_not_a_redirect(client: TestClient) -> None:
    for headers in (SCRIPT, {"Accept": "*/*"}, {}):
        response = client.get("/collections/street_lamps/items", headers=headers)
        assert response.status_code == 401, headers
        assert response.headers["www-authenticate"].startswith("Bearer")
    # An HTML page asked for by a browser, but as JSON (f=json), is data: 401 as well.
    assert client.get("/collections?f=json", headers=BROWSER).status_code == 401


def test_signing_in_sets_a_strict_httponly_session_cookie_that_opens_the_pages(
    client: TestClient,
) -> None:
    token = sign_in(client)
    cookie = client.cookies.get(SESSION_COOKIE)
    assert cookie == token
    header = next(
        v
        for k, v in client.post(
            "/auth/session", data={"username": INSPECTOR, "password": PASSWORD}
        ).headers.multi_items()
        if k == "set-cookie"
    )
    attributes = {part.strip().split("=")[0].lower() for part in header.split(";")}
    assert {"httponly", "path", "max-age"} <= attributes
    assert "samesite=strict" in header.lower()
    assert "secure" not in attributes  # plain HTTP here; set over HTTPS
    assert int(header.lower().split("max-age=")[1].split(";")[0]) == 15 * 60

    for path in ("/map", "/map/grids/231005001001001", "/", "/collections?f=html"):
        response = client.get(path, headers=BROWSER)
        assert response.status_code == 200, path
    # The page's own data requests ride on the same cookie (same origin).
    assert client.get("/collections/street_lamps/items", headers=SCRIPT).status_code == 200
    assert client.get("/auth/me").json()["name"] == INSPECTOR


def test_a_wrong_password_sets_no_cookie_and_says_so(client: TestClient) -> None:
    response = client.post(
        "/auth/session", data={"username": INSPECTOR, "password": "nope"}, headers=SCRIPT
    )
    assert response.status_code == 400
    assert response.json()["detail"] == "wrong user name or password"
    assert "set-cookie" not in response.headers
    assert "nope" not in response.text


def test_the_cookie_never_authorises_a_write(
    client: TestClient, engine: Engine, tmp_path: Path
) -> None:
    """A cross-site form could make the browser POST with the cookie: it must count for nothing."""
    token = sign_in(client)
    gpx = (
        '<?xml version="1.0"?><gpx version="1.1" creator="t" xmlns="http://www.topografix.com/GPX/1/1">'
        '<wpt lat="44.58" lon="129.6"><time>2026-11-20T08:00:00Z</time><name>x</name></wpt></gpx>'
    )
    files = {"file": ("walk.gpx", gpx.encode(), "application/gpx+xml")}
    with engine.connect() as conn:
        before = conn.execute(text("SELECT count(*) FROM uploads")).scalar_one()
    refused = client.post("/uploads", files=files)
    assert refused.status_code == 401
    item = client.get("/collections/street_lamps/items?limit=1", headers=SCRIPT).json()
    lamp = item["features"][0]["id"]
    assert client.delete(f"/collections/street_lamps/items/{lamp}").status_code == 401
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM uploads")).scalar_one() == before
        still = conn.execute(text("SELECT count(*) FROM street_lamps WHERE id = :i"), {"i": lamp})
        assert still.scalar_one() == 1
    # With the bearer header the page keeps, the same write is judged on its merits.
    client.cookies.clear()
    answered = client.post("/uploads", files=files, headers={"Authorization": f"Bearer {token}"})
    assert answered.status_code != 401


def test_an_expired_session_sends_the_browser_to_log_in_again_and_drops_the_cookie(
    client: TestClient,
) -> None:
    sign_in(client)
    key = client.app.state.jwt_key  # type: ignore[attr-defined]
    past = int(time.time()) - 3600
    stale = jwt.encode(
        {"sub": "1", "iat": past - 900, "exp": past, "typ": "access"}, key, algorithm="HS256"
    )
    client.cookies.set(SESSION_COOKIE, stale)
    response = client.get("/map", headers=BROWSER)
    assert response.status_code == 303
    assert "reason=expired" in response.headers["location"]
    assert f"{SESSION_COOKIE}=" in response.headers["set-cookie"]
    assert "max-age=0" in response.headers["set-cookie"].lower()
    # A script asking for data gets the 401 it can act on.
    client.cookies.set(SESSION_COOKIE, stale)
    assert client.get("/collections/street_lamps/items", headers=SCRIPT).status_code == 401


def test_logging_out_expires_the_cookie(client: TestClient) -> None:
    sign_in(client)
    response = client.post("/auth/logout")
    assert response.status_code == 204
    assert "max-age=0" in response.headers["set-cookie"].lower()
    assert client.cookies.get(SESSION_COOKIE) is None
    assert client.get("/map", headers=BROWSER).status_code == 303


def test_logins_through_the_page_are_rate_limited_like_any_login(client: TestClient) -> None:
    for _ in range(5):
        client.post("/auth/session", data={"username": INSPECTOR, "password": "wrong"})
    response = client.post("/auth/session", data={"username": INSPECTOR, "password": PASSWORD})
    assert response.status_code == 429
    assert int(response.headers["retry-after"]) > 0
    assert "set-cookie" not in response.headers


@pytest.mark.parametrize(
    ("asked", "goes_to"),
    [
        ("/map/grids/231005001001001?lang=en", "/map/grids/231005001001001?lang=en"),
        ("/collections/street_lamps?f=html", "/collections/street_lamps?f=html"),
        ("//evil.example/map", "/map"),
        ("/\\evil.example", "/map"),
        ("https://evil.example/", "/map"),
        ("javascript:alert(1)", "/map"),
        ("/map\r\nSet-Cookie: x=1", "/map"),
        ("", "/map"),
        (None, "/map"),
    ],
)
def test_after_logging_in_the_page_only_ever_returns_to_this_service(
    asked: str | None, goes_to: str
) -> None:
    assert safe_next(asked) == goes_to


def test_the_login_page_never_offers_another_site_as_the_way_back(client: TestClient) -> None:
    page = client.get("/login", params={"next": "//evil.example/x"})
    assert "evil.example" not in page.text
    assert '"next":"/map"' in page.text
