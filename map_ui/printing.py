"""`civic-gis print-grid`: a grid's print sheet (一格一图) rendered to PDF by headless chromium.

The command serves the app on loopback itself, opens `/map/grids/{code}/print`, waits until
the map script says every tile layer has drawn (`window.civicMapReady`), and prints A4
landscape. The sheet's map is the same page a user prints from the browser.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from map_ui.browser import A4_LANDSCAPE_VIEWPORT, guard_network, launch, serving
from map_ui.styles import Lang


class PrintError(RuntimeError):
    """The sheet could not be printed; the message says why."""


def print_grid_pdf(
    app: Any,
    code: str,
    out: Path,
    *,
    lang: Lang = "zh",
    chromium: Path = Path("/usr/bin/chromium"),
    timeout_s: float = 120.0,
) -> Path:
    """Write the print sheet of grid `code` to `out` (PDF, A4 landscape)."""
    try:
        from playwright.sync_api import Error as PlaywrightError
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        raise PrintError("playwright is not installed: pip install 'civic-gis[print]'") from exc
    query = "" if lang == "zh" else f"?lang={lang}"
    with serving(app) as base, sync_playwright() as playwright:
        try:
            browser = launch(playwright, chromium)
        except (FileNotFoundError, PlaywrightError) as exc:
            raise PrintError(f"cannot start chromium: {exc}") from exc
        try:
            context = browser.new_context(viewport=A4_LANDSCAPE_VIEWPORT, device_scale_factor=2)
            log = guard_network(context)
            page = context.new_page()
            response = page.goto(f"{base}/map/grids/{code}/print{query}", wait_until="load")
            if response is None or response.status != 200:
                status = response.status if response is not None else "no response"
                detail = response.text() if response is not None else ""
                raise PrintError(f"print page of grid {code}: {status} {detail}".strip())
            page.wait_for_function("window.civicMapReady === true", timeout=timeout_s * 1000)
            out.parent.mkdir(parents=True, exist_ok=True)
            page.pdf(
                path=str(out),
                format="A4",
                landscape=True,
                print_background=True,
                prefer_css_page_size=True,
            )
        except PlaywrightError as exc:
            raise PrintError(f"printing grid {code} failed: {exc}") from exc
        finally:
            browser.close()
    if log.blocked:
        raise PrintError(f"the sheet tried to reach other hosts: {', '.join(log.blocked)}")
    return out
