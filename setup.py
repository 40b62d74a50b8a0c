"""The one compiled module, `data.field._gpx_points` (everything else is in pyproject.toml).

It walks libxml2's tree through lxml's public C API, so it is compiled against the lxml
it runs with: the build requirement and the dependency name the same lxml version.
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
            )
        ],
        language_level=3,
    )
)
