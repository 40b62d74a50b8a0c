#!/usr/bin/env bash
# The peer servers of the OGC benchmark (issue 3) in their own venv, never the project's.
#
#   bash bench/peers.sh            # creates/updates var/bench-peers-venv (idempotent)
#
# tipg and pygeoapi pin web-framework versions of their own; keeping them out of
# .venv keeps the project's dependency set what pyproject.toml says.
# pygeoapi's PostgreSQL provider imports geoalchemy2 and psycopg2 but does not
# install them (shared/TRAPS.md). mapbox-vector-tile decodes tiles for the
# content check. wrk (Debian) is the load generator.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${BENCH_PEERS_VENV:-$ROOT/var/bench-peers-venv}"
PYTHON="${PYTHON:-python3}"
PACKAGES=(
    "tipg==1.6.1"
    "pygeoapi==0.21.0"
    "psycopg2-binary"
    "geoalchemy2"
    "uvicorn[standard]"
    "mapbox-vector-tile"
)
STAMP="$VENV/.bench-peers-$(printf '%s\n' "${PACKAGES[@]}" | sha1sum | cut -c1-12)"

if [[ -f "$STAMP" ]] && "$VENV/bin/python" -c "import tipg, pygeoapi, mapbox_vector_tile, psycopg2, geoalchemy2" 2>/dev/null; then
    echo "peers venv ready: $VENV"
else
    if [[ ! -x "$VENV/bin/python" ]]; then
        "$PYTHON" -m venv "$VENV"
    fi
    # (this machine's pip.conf names local indexes that may be absent: drop those warnings)
    "$VENV/bin/python" -m pip install --quiet --upgrade pip 2> >(grep -v "is ignored: it is neither" >&2)
    "$VENV/bin/python" -m pip install --quiet "${PACKAGES[@]}" 2> >(grep -v "is ignored: it is neither" >&2)
    rm -f "$VENV"/.bench-peers-*
    touch "$STAMP"
    echo "peers venv installed: $VENV"
fi
"$VENV/bin/python" -m pip list 2>/dev/null | grep -i -E '^(tipg|pygeoapi|uvicorn|psycopg2-binary|geoalchemy2|mapbox-vector-tile|starlette|fastapi|flask) '

if ! command -v wrk >/dev/null 2>&1; then
    if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1; then
        apt-get install -y -qq wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
    else
        echo "wrk is missing: apt-get install wrk (the benchmark falls back to its Python client)" >&2
    fi
fi
command -v wrk >/dev/null 2>&1 && echo "wrk: $(command -v wrk)"
exit 0
