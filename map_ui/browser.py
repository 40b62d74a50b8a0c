"""Headless Debian chromium driven by playwright: printing, browser tests, benchmarks.

Never `playwright install`: the browser is Debian's `chromium` (installed by ./dev), launched
with the flags TRAPS.md lists so it makes no background requests of its own. Pages run
against an app served on loopback by `serving()`, and `guard_network()` aborts and records
every request that would leave the machine.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import uvicorn

if TYPE_CHECKING:
    from playwright.sync_api import (
        Browser,
        BrowserContext,
        Playwright,
        Request,
        Response,
        Route,
        ViewportSize,
    )

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)
A4_LANDSCAPE_VIEWPORT: ViewportSize = {"width": 1123, "height": 794}
"""A4 landscape at 96 px per inch (297 x 210 mm)."""
LOCAL_SCHEMES = frozenset({"data", "blob", "about", "chrome", "devtools"})


def launch(playwright: Playwright, executable: Path = CHROMIUM) -> Browser:
    """Debian's chromium, headless, with background networking off."""
    if not executable.exists():
        raise FileNotFoundError(
            f"{executable} not found: install Debian's chromium (apt-get install chromium)"
        )
    return playwright.chromium.launch(
        executable_path=str(executable), args=list(CHROMIUM_ARGS), headless=True
    )


def is_local(url: str) -> bool:
    """Whether a request stays on this machine (loopback host, or no network at all)."""
    parts = urlsplit(url)
    if parts.scheme in LOCAL_SCHEMES:
        return True
    host = parts.hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass
class NetworkLog:
    """Requests a page tried to send off the machine, and requests that failed."""

    blocked: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    http_errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)


def guard_network(context: BrowserContext) -> NetworkLog:
    """Abort every non-loopback request of the context and record what happened."""
    log = NetworkLog()

    def route(route: Route) -> None:
        url = route.request.url
        log.requests.append(url)
        if is_local(url):
            route.continue_()
        else:
            log.blocked.append(url)
            route.abort("blockedbyclient")

    def failed(request: Request) -> None:
        if request.url not in log.blocked:
            log.failed.append(f"{request.url}: {request.failure}")

    def response(response: Response) -> None:
        if response.status >= 400:
            log.http_errors.append(f"{response.status} {response.url}")

    context.route("**/*", route)
    context.on("requestfailed", failed)
    context.on("response", response)
    return log


@contextmanager
def serving(app: Any, host: str = "127.0.0.1", timeout_s: float = 60.0) -> Iterator[str]:
    """Serve an ASGI app on a free loopback port in a thread; yields its base URL."""
    sock = socket.socket()
    sock.bind((host, 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout_s
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the map server did not start")
        time.sleep(0.05)
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=timeout_s)
        sock.close()
