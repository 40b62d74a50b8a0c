"""The compiled modules (everything else is in pyproject.toml).

- `data.field._gpx_points` walks libxml2's tree through lxml's public C API, so it is
  compiled against the lxml it runs with: the build requirement and the dependency name
  the same lxml version.
- `layers._mvt_points` encodes point layers of vector tiles (plain C, no headers needed).
"""

import lxml
from Cython.Build import cythonize
from setuptools import Extension, setup

setup(
    ext_modules=cythonize(
        [
            Extension(
                "data.field._gpx_points",
                ["data/field/_gpx_points.pyx"],
                include_dirs=lxml.get_include(),
            ),
            Extension("layers._mvt_points", ["layers/_mvt_points.pyx"]),
        ],
        language_level=3,
    )
)
