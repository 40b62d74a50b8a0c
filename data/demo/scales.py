"""The fixed facts of the demo district and how big it is at each scale.

Sizes are in 500 m blocks (the superblocks of a Chinese city, bounded by
roads); every other count follows from them, except the few layers whose
size the brief fixes directly (schools, venues, illegal buildings).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Literal

Scale = Literal["small", "city", "large"]

DISTRICT_CODE = "231005"
"""GB/T 2260 code of 黑龙江省牡丹江市西安区."""
CITY_NAME = "牡丹江市"
DISTRICT_NAME = "西安区"
CENTRE = (129.60, 44.58)
"""Longitude, latitude of the district centre (WGS-84)."""
METRIC_CRS = "EPSG:4552"
"""CGCS2000 3-degree Gauss-Kruger, central meridian 129E: everything is built in its metres."""
REFERENCE_DATE = date(2026, 11, 25)
"""'Today' of the demo: deadlines, inspections and overdue lists are relative to it, so a
given seed gives the same city on any day."""


@dataclass(frozen=True)
class ScaleSpec:
    """How big the demo city is."""

    blocks_x: int
    blocks_y: int
    street_blocks: tuple[int, int]
    """Target size of a street office (街道) in blocks, west-east and south-north."""
    schools: int
    venues: int
    illegal_buildings: int
    block_m: float = 500.0
    community_blocks: tuple[int, int] = (4, 2)
    """Target community size: 4 x 2 blocks of 500 m = 2 km² (seed 003: 2.02 km²)."""
    back_street_share: float = 0.33
    """Share of blocks crossed by a back street (背街小巷)."""


SCALES: dict[str, ScaleSpec] = {
    # 8 x 6 blocks = 12 km²: 2 streets, 6 communities, ~30 grid cells.
    "small": ScaleSpec(8, 6, (4, 6), schools=8, venues=40, illegal_buildings=25),
    # ~10x small: 120 km², 6 streets, 60 communities.
    "city": ScaleSpec(24, 20, (8, 10), schools=80, venues=400, illegal_buildings=250),
    # The load test: ~3,000 km², >= 5,000 grid cells, >= 500,000 lamps.
    "large": ScaleSpec(110, 110, (10, 10), schools=2000, venues=30000, illegal_buildings=5000),
}
