"""Output format negotiation: `f=` first, then the Accept header.

Browsers send `Accept: text/html,...` and get pages; GIS clients (GDAL, QGIS,
owslib) ask for JSON or send nothing specific and get JSON.
"""

from __future__ import annotations

from typing import Literal

from fastapi import Request

from gis_api.problems import ApiProblem

Format = Literal["json", "html"]

_F_VALUES: dict[str, Format] = {"json": "json", "geojson": "json", "html": "html"}


def negotiate(request: Request) -> Format:
    """The format to answer in; 406 if the client accepts neither JSON nor HTML."""
    f = request.query_params.get("f")
    if f is not None:
        try:
            return _F_VALUES[f.lower()]
        except KeyError:
            raise ApiProblem(406, f"format f={f!r} is not offered; use f=json or f=html") from None
    accept = request.headers.get("accept", "").lower()
    if not accept or "*/*" in accept or "json" in accept:
        if "text/html" in accept and accept.index("text/html") < _first_json(accept):
            return "html"
        return "json"
    if "text/html" in accept:
        return "html"
    raise ApiProblem(
        406, f"cannot answer with {accept!r}: this resource is JSON or HTML (f=json, f=html)"
    )


def _first_json(accept: str) -> int:
    positions = [accept.find(t) for t in ("json", "*/*") if t in accept]
    return min(positions) if positions else len(accept)


def language(request: Request) -> Literal["zh", "en"]:
    """Chinese unless `lang=en` is asked for; 400 for another value."""
    lang = request.query_params.get("lang", "zh")
    if lang not in ("zh", "en"):
        raise ApiProblem(400, f"lang must be zh or en, got {lang!r}")
    return "en" if lang == "en" else "zh"
