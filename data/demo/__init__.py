"""The demo city: 牡丹江市西安区 (GB/T 2260 231005), generated with every campaign layer.

`generate_city` builds a deterministic city for a (scale, seed) in metres on CGCS2000
Gauss-Kruger CM 129E and returns WGS-84 frames shaped exactly as layers/catalog.py declares;
`write_city_files` writes them for the import path (`civic-gis demo` loads them through the
same checks as any user's file).  The city is meant to be checked: each layer carries a few
planted findings (lamp gaps, a dark circuit, a vacant grid officer, a laggard community,
cafés near schools, overdue illegal structures) among data that otherwise passes the rules.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np

from data.demo.bins import build_bins
from data.demo.compounds import build_compounds
from data.demo.entrances import build_entrances
from data.demo.files import write_city_files
from data.demo.frames import Layer, to_frame
from data.demo.geometry import make_lattice
from data.demo.grids import grid_layer, plan_hierarchy
from data.demo.illegal import build_illegal_buildings
from data.demo.lamps import build_lamps
from data.demo.land_use import plan_slots
from data.demo.roads import build_roads
from data.demo.scales import REFERENCE_DATE, SCALES, Scale
from data.demo.schools import build_schools
from data.demo.signage import build_signage
from data.demo.venues import build_venues
from layers.catalog import CATALOG

__all__ = ["REFERENCE_DATE", "Scale", "generate_city", "write_city_files"]

_PARTS = (
    "lattice",
    "hierarchy",
    "roads",
    "slots",
    "schools",
    "compounds",
    "venues",
    "lamps",
    "bins",
    "illegal",
    "signage",
    "grids",
)


def generate_city(scale: Scale = "small", seed: int = 0) -> dict[str, gpd.GeoDataFrame]:
    """Every catalog layer of the demo city, keyed by layer id in catalog order.

    Frames are EPSG:4326 with columns code, the catalog fields, geometry; choice columns
    hold catalog keys.  The same (scale, seed) always gives the same city: each part draws
    from its own random stream, so changing one part does not reshuffle the others.
    """
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}; one of {', '.join(SCALES)}")
    if seed < 0:
        raise ValueError("seed must be >= 0")
    spec = SCALES[scale]
    rng = {part: np.random.default_rng([seed, k]) for k, part in enumerate(_PARTS)}

    lattice = make_lattice(spec, rng["lattice"])
    hierarchy = plan_hierarchy(spec, rng["hierarchy"])
    roads = build_roads(lattice, hierarchy, spec, rng["roads"])
    slots = plan_slots(lattice, spec.schools, rng["slots"])
    schools = build_schools(slots, roads, rng["schools"])
    compounds, buildings = build_compounds(slots, roads, rng["compounds"])
    venues, venue_roads = build_venues(spec.venues, roads, schools, rng["venues"])
    block_households = np.bincount(
        slots.block[compounds.slot[buildings.compound]],
        weights=buildings.households,
        minlength=lattice.nx * lattice.ny,
    ).astype(np.int64)

    layers: dict[str, Layer] = {
        "grids": grid_layer(hierarchy, lattice, block_households, rng["grids"]),
        "roads": roads.layer(),
        "street_lamps": build_lamps(
            lattice, hierarchy, roads, slots, compounds, buildings, rng["lamps"]
        ),
        "bins": build_bins(lattice, hierarchy, roads, slots, compounds, rng["bins"]),
        "schools": schools.layer(),
        "venues": venues.layer(rng["venues"], roads, venue_roads),
        "illegal_buildings": build_illegal_buildings(
            spec.illegal_buildings, slots, compounds, rng["illegal"]
        ),
        "signage": build_signage(
            lattice, hierarchy, roads, slots, compounds, schools, rng["signage"]
        ),
        "compounds": compounds.layer(),
        "buildings": buildings.layer(compounds.codes),
        "entrances": build_entrances(schools, compounds, buildings, venues),
    }
    return {spec.id: to_frame(spec, layers[spec.id]) for spec in CATALOG}
