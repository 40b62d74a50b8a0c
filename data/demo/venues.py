"""Venues (经营场所): shopfronts along roads, a few of them deliberately too close to schools.

Most venues are spread along roads (commercial streets favoured); any internet café, game
hall, KTV or tobacco shop that happens to fall within 250 m of a campus becomes a harmless
kind, so the only school-zone findings are the planted ones: internet cafés and game halls
across the road from a school gate (20-150 m from the campus boundary) and tobacco shops
right opposite a gate (within 50 m).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import shapely

from data.demo.frames import Layer
from data.demo.geometry import FloatArray, IntArray
from data.demo.names import SHOP_WORDS, VENUE_SUFFIXES, StrArray, digits, join, numbered, pick
from data.demo.roads import Roads, style_values
from data.demo.schools import Schools
from data.demo.timeline import as_dates, days_before

TYPES = tuple(VENUE_SUFFIXES)
TYPE_SHARES = (0.10, 0.05, 0.15, 0.08, 0.25, 0.12, 0.25)
"""internet_cafe, game_hall, mahjong_room, entertainment, tobacco, lottery, other."""
RESTRICTED = ("internet_cafe", "game_hall", "entertainment", "tobacco")
HARMLESS = ("mahjong_room", "lottery", "other")
CLEAR_OF_SCHOOLS_M = 250.0
ZONE_SCHOOL_TYPES = ("primary", "middle", "high", "nine_year")
FAR_MINIMUM = {"internet_cafe": 2, "game_hall": 1, "entertainment": 1, "tobacco": 2}
"""Venues of each kind (1 unless listed) placed at least 250 m from every school."""
SHOPFRONT_M = 4.0
"""Shopfronts stand this far beyond the lamp line."""


@dataclass(frozen=True)
class Venues:
    """Venue points in metres, with the direction to their road (for their entrance)."""

    x: FloatArray
    y: FloatArray
    to_road_x: FloatArray
    to_road_y: FloatArray
    venue_type: StrArray
    codes: StrArray
    names: StrArray

    def __len__(self) -> int:
        return len(self.x)

    def layer(self, rng: np.random.Generator, roads: Roads, road: IntArray) -> Layer:
        """The venues layer (licences, addresses and opening dates drawn here)."""
        n = len(self)
        year = rng.integers(2008, 2026, n).astype(np.str_)
        serial = digits(rng.integers(1, 10_000, n), 4)
        licence = np.select(
            [
                self.venue_type == "internet_cafe",
                np.isin(self.venue_type, ["game_hall", "entertainment"]),
                self.venue_type == "tobacco",
                self.venue_type == "lottery",
            ],
            [
                join("黑网文〔", year, "〕", serial, "号"),
                join("文娱许字〔", year, "〕第", serial, "号"),
                join("231005", digits(rng.integers(0, 10**6, n), 6)),
                join("23100", serial),
            ],
            "",
        ).astype(object)
        licence[licence == ""] = None
        return Layer(
            self.codes,
            {
                "name": self.names,
                "venue_type": self.venue_type,
                "licence": licence,
                "address": join(
                    "西安区", roads.names[road], rng.integers(1, 800, n).astype(np.str_), "号"
                ),
                "opened_on": as_dates(days_before(rng, n, 30, 18 * 365)),
            },
            shapely.points(self.x, self.y),
        )


def build_venues(
    n: int, roads: Roads, schools: Schools, rng: np.random.Generator
) -> tuple[Venues, IntArray]:
    """`n` venues and the road each stands on."""
    offsets = style_values("kerb_offset_m") + SHOPFRONT_M
    near = _near_schools(n, roads, schools, offsets, rng)
    k = n - len(near.x)
    lengths = roads.lines.lengths()
    weight = lengths * np.where(roads.road_class == "commercial", 8.0, 1.0)
    road = rng.choice(len(roads), k, p=weight / weight.sum()).astype(np.int64)
    dist = rng.uniform(10.0, lengths[road] - 10.0)
    side = rng.choice([-1.0, 1.0], k)
    x, y, nx, ny = roads.lines.along(road, dist, side * offsets[roads.class_index[road]])
    types = np.asarray(TYPES, dtype=np.str_)[rng.choice(len(TYPES), k, p=TYPE_SHARES)]
    # Keep ordinary venues out of the school zones: only the planted ones break a rule.
    tree = shapely.STRtree(schools.geoms)
    close, _ = tree.query(shapely.points(x, y), predicate="dwithin", distance=CLEAR_OF_SCHOOLS_M)
    close = np.unique(close)
    restricted = np.isin(types[close], RESTRICTED)
    types[close[restricted]] = pick(rng, HARMLESS, int(restricted.sum()))
    # Every kind on the legend, the restricted ones also where they are allowed.
    far = rng.permutation(np.setdiff1d(np.arange(k), close))
    wanted = np.repeat(np.asarray(TYPES), [FAR_MINIMUM.get(t, 1) for t in TYPES])
    types[far[: len(wanted)]] = wanted[: len(far)]

    all_types = np.concatenate([near.venue_type, types])
    all_road = np.concatenate([near.road, road])
    suffix = np.full(n, "", dtype="<U16")
    for venue_type, options in VENUE_SUFFIXES.items():
        mine = np.flatnonzero(all_types == venue_type)
        suffix[mine] = pick(rng, options, len(mine))
    venues = Venues(
        x=np.concatenate([near.x, x]),
        y=np.concatenate([near.y, y]),
        to_road_x=np.concatenate([near.to_road_x, -side * nx]),
        to_road_y=np.concatenate([near.to_road_y, -side * ny]),
        venue_type=all_types,
        codes=numbered("V", n),
        names=join(pick(rng, SHOP_WORDS, n), suffix),
    )
    return venues, all_road


class Planted(NamedTuple):
    """Venues placed next to schools on purpose."""

    x: FloatArray
    y: FloatArray
    to_road_x: FloatArray
    to_road_y: FloatArray
    venue_type: StrArray
    road: IntArray


def _near_schools(
    n: int, roads: Roads, schools: Schools, offsets: FloatArray, rng: np.random.Generator
) -> Planted:
    """Planted findings: cafés and game halls across the road from a school gate, shifted
    20-230 m along the road, and tobacco shops right opposite a gate."""
    eligible = np.flatnonzero(np.isin(schools.school_type, ZONE_SCHOOL_TYPES))
    if len(eligible) == 0:
        eligible = np.arange(len(schools))
    cafes = min(n // 3, max(3, round(0.12 * len(schools))))
    tobacco = min(n // 6, max(1, round(0.05 * len(schools))))
    school = np.concatenate(
        [
            rng.choice(eligible, cafes, replace=cafes > len(eligible)),
            rng.choice(len(schools), tobacco, replace=tobacco > len(schools)),
        ]
    ).astype(np.int64)
    cafe_types = np.where(np.arange(cafes) % 2 == 0, "internet_cafe", "game_hall")
    types = np.concatenate([cafe_types, np.full(tobacco, "tobacco")]).astype(np.str_)
    dx = schools.road_x[school] - schools.gate_x[school]
    dy = schools.road_y[school] - schools.gate_y[school]
    norm = np.hypot(dx, dy)
    ux, uy = dx / norm, dy / norm
    road = schools.road[school]
    across = offsets[roads.class_index[road]]
    shift = np.concatenate(
        [
            rng.choice([-1.0, 1.0], cafes) * rng.uniform(20.0, 230.0, cafes),
            rng.uniform(-8.0, 8.0, tobacco),
        ]
    )
    x = schools.road_x[school] + ux * across - uy * shift
    y = schools.road_y[school] + uy * across + ux * shift
    return Planted(x, y, -ux, -uy, types, road)
