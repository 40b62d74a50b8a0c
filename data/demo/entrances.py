"""Entrances (出入口): school gates, compound gates, building doors and venue doors.

Gates and doors were placed on their owner's boundary by the modules that drew the
owners; this module only lays them out as one layer whose owner_code points into the
owner's layer (the importer checks every one of them).  Venue doors are 2 m towards the
road from the venue point, for the walking-distance method (Guangdong) of school zones.
"""

from __future__ import annotations

import numpy as np
import shapely

from data.demo.compounds import Buildings, Compounds
from data.demo.frames import Layer
from data.demo.names import join, numbered
from data.demo.schools import Schools
from data.demo.venues import Venues

VENUE_DOOR_M = 2.0


def build_entrances(
    schools: Schools,
    compounds: Compounds,
    buildings: Buildings,
    venues: Venues,
) -> Layer:
    """The entrances layer, owners in catalog order: schools, compounds, buildings, venues."""
    side = np.flatnonzero(schools.has_side_gate)
    school_owner = np.concatenate([np.arange(len(schools)), side])
    order = np.argsort(school_owner, kind="stable")
    school_owner = school_owner[order]
    sx = np.concatenate([schools.gate_x, schools.side_gate_x[side]])[order]
    sy = np.concatenate([schools.gate_y, schools.side_gate_y[side]])[order]
    skind = np.concatenate([np.full(len(schools), "main"), np.full(len(side), "side")])[order]
    sname = join(schools.names[school_owner], np.where(skind == "main", "正门", "侧门"))

    g = compounds.gates
    nb, nv = len(buildings), len(venues)
    vx = venues.x + VENUE_DOOR_M * venues.to_road_x
    vy = venues.y + VENUE_DOOR_M * venues.to_road_y
    owner_layer = np.concatenate(
        [
            np.full(len(school_owner), "schools"),
            np.full(len(g.owner), "compounds"),
            np.full(nb, "buildings"),
            np.full(nv, "venues"),
        ]
    )
    n = len(owner_layer)
    return Layer(
        numbered("E", n, width=7),
        {
            "owner_layer": owner_layer,
            "owner_code": np.concatenate(
                [
                    schools.codes[school_owner],
                    compounds.codes[g.owner],
                    buildings.codes,
                    venues.codes,
                ]
            ),
            "kind": np.concatenate([skind, g.kind, np.full(nb, "pedestrian"), np.full(nv, "main")]),
            "name": np.concatenate(
                [
                    sname,
                    g.names,
                    join(compounds.names[buildings.compound], buildings.names, "单元门"),
                    join(venues.names, "入口"),
                ]
            ),
        },
        shapely.points(
            np.concatenate([sx, g.x, buildings.door_x, vx]),
            np.concatenate([sy, g.y, buildings.door_y, vy]),
        ),
    )
