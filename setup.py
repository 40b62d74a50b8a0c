"""The compiled modules (everything else is in pyproject.toml).

- `data.field._gpx_points` walks libxml2's tree through lxml's public C API, so it is
  compiled against the lxml it runs with: the build requirement and the dependency name
  the same lxml version.
- `layers._mvt_points` encodes point layers of vector tiles; it reads query results with
  libpq's C API, linked with the libpq psycopg's C implementation (`psycopg[c]`) uses.
"""

import subprocess

import lxml
from Cython.Build import cythonize
from setuptools import Extension, setup


def _pg_config(option: str) -> str:
    """Where libpq's header and library are (Debian's libpq-dev)."""
    done = subprocess.run(["pg_config", option], check=True, capture_output=True, text=True)
    return done.stdout.strip()


setup(
    ext_modules=cythonize(
        [
            Extension(
                "data.field._gpx_points",
                ["data/field/_gpx_points.pyx"],
                include_dirs=lxml.get_include(),
            ),
            Extension(
                "layers._mvt_points",
                ["layers/_mvt_points.pyx"],
                include_dirs=[_pg_config("--includedir")],
                library_dirs=[_pg_config("--libdir")],
                libraries=["pq"],
            ),
        ],
        language_level=3,
    )
)
