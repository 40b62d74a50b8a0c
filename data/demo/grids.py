"""The grid hierarchy: district > street offices > communities > grid cells (网格).

Every area is a rectangle of blocks in lattice indices, so children tile their parent
exactly ("横向到边、纵向到底": no gaps, no overlaps) and each parent polygon is the union of
its children by construction.  Codes follow DB11/T 2157-2023 as in layers/grid_codes.py:
district(6) + street(3) + community(3) + sequence(3), numbered west to east, north to south.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from data.demo.frames import Layer
from data.demo.geometry import FloatArray, IntArray, Lattice, expand
from data.demo.names import (
    COMMUNITY_WORDS,
    STREET_WORDS,
    StrArray,
    cycled,
    digits,
    join,
    mobile_numbers,
    person_names,
)
from data.demo.scales import DISTRICT_CODE, DISTRICT_NAME, ScaleSpec

Rect = tuple[int, int, int, int]
"""i0, i1, j0, j1: blocks i0 <= bi < i1, j0 <= bj < j1."""


@dataclass(frozen=True)
class Rects:
    """Lattice-index rectangles, one per area."""

    i0: IntArray
    i1: IntArray
    j0: IntArray
    j1: IntArray

    @classmethod
    def of(cls, rects: list[Rect]) -> Rects:
        """From a list of (i0, i1, j0, j1)."""
        a = np.asarray(rects, dtype=np.int64).reshape(-1, 4)
        return cls(a[:, 0], a[:, 1], a[:, 2], a[:, 3])

    def __len__(self) -> int:
        return len(self.i0)


@dataclass(frozen=True)
class Hierarchy:
    """Streets, communities and grid cells, in code order, and which block is in which cell."""

    streets: Rects
    communities: Rects
    cells: Rects
    community_street: IntArray
    cell_community: IntArray
    block_cell: IntArray
    """Flat block index -> grid cell."""
    street_codes: StrArray
    community_codes: StrArray
    cell_codes: StrArray
    street_names: StrArray
    community_words: StrArray
    """Community names without 社区 (光华): back streets are named after them (光华三巷)."""
    community_names: StrArray
    cell_names: StrArray

    @property
    def block_community(self) -> IntArray:
        """Flat block index -> community."""
        out: IntArray = self.cell_community[self.block_cell]
        return out


def _split(total: int, target: int, rng: np.random.Generator) -> list[int]:
    """`total` blocks cut into parts of about `target` blocks."""
    parts = max(1, round(total / target))
    sizes = [total // parts] * parts
    for k in rng.choice(parts, total - sum(sizes), replace=False):
        sizes[int(k)] += 1
    return sizes


def _tiles(rect: Rect, target: tuple[int, int], rng: np.random.Generator) -> list[Rect]:
    """A rectangle cut into rows and columns of about `target` blocks, north-west first."""
    i0, i1, j0, j1 = rect
    widths = _split(i1 - i0, target[0], rng)
    heights = _split(j1 - j0, target[1], rng)
    xs = np.concatenate([[i0], i0 + np.cumsum(widths)])
    ys = np.concatenate([[j0], j0 + np.cumsum(heights)])
    return [
        (int(xs[c]), int(xs[c + 1]), int(ys[r]), int(ys[r + 1]))
        for r in reversed(range(len(heights)))
        for c in range(len(widths))
    ]


def _cells(communities: Rects, rng: np.random.Generator) -> tuple[Rects, IntArray, IntArray]:
    """Grid cells: each community row of blocks cut into 2-3 cells at random places.

    Returns the cells (north first, then west to east, within each community), the
    community of each cell and its sequence number in the community.
    """
    heights = communities.j1 - communities.j0
    band_community, b = expand(heights)
    j = communities.j1[band_community] - 1 - b
    i0 = communities.i0[band_community]
    width = communities.i1[band_community] - i0
    cuts = np.minimum(width, rng.integers(2, 4, len(width))) - 1
    # Choose `cuts` distinct cut positions among 1..width-1 by ranking random keys.
    widest = int(width.max())
    position = np.arange(1, widest)
    keys = np.where(position < width[:, None], rng.random((len(width), widest - 1)), np.inf)
    rank = np.argsort(np.argsort(keys, axis=1), axis=1)
    starts = np.zeros((len(width), widest), dtype=bool)
    starts[:, 0] = True
    starts[:, 1:] = rank < cuts[:, None]
    band, start = np.nonzero(starts)
    following = np.append(start[1:], 0)
    last = np.append(band[1:] != band[:-1], True)
    end = np.where(last, width[band], following)
    cell_community = band_community[band]
    _, seq = expand(np.bincount(cell_community, minlength=len(communities)))
    cells = Rects(i0[band] + start, i0[band] + end, j[band], j[band] + 1)
    return cells, cell_community, seq + 1


def plan_hierarchy(spec: ScaleSpec, rng: np.random.Generator) -> Hierarchy:
    """Cut the district into streets, communities and grid cells of 1-3 blocks."""
    streets: list[Rect] = []
    communities: list[Rect] = []
    community_street: list[int] = []
    community_seq: list[int] = []
    whole = (0, spec.blocks_x, 0, spec.blocks_y)
    for street in _tiles(whole, spec.street_blocks, rng):
        streets.append(street)
        for k, community in enumerate(_tiles(street, spec.community_blocks, rng)):
            communities.append(community)
            community_street.append(len(streets) - 1)
            community_seq.append(k + 1)
    community_rects = Rects.of(communities)
    cells, cc, cell_seq = _cells(community_rects, rng)
    cell, step = expand(cells.i1 - cells.i0)
    block_cell = np.full(spec.blocks_x * spec.blocks_y, -1, dtype=np.int64)
    block_cell[cells.j0[cell] * spec.blocks_x + cells.i0[cell] + step] = cell
    cs = np.asarray(community_street, dtype=np.int64)
    s_part = digits(np.arange(1, len(streets) + 1, dtype=np.int64), 3)
    c_part = digits(np.asarray(community_seq, dtype=np.int64), 3)
    street_codes = join(DISTRICT_CODE, s_part, "000000")
    community_codes = join(DISTRICT_CODE, s_part[cs], c_part, "000")
    cell_codes = join(DISTRICT_CODE, s_part[cs[cc]], c_part[cc], digits(cell_seq, 3))
    words = cycled(COMMUNITY_WORDS, np.arange(len(communities), dtype=np.int64))
    community_names = join(words, "社区")
    return Hierarchy(
        streets=Rects.of(streets),
        communities=community_rects,
        cells=cells,
        community_street=cs,
        cell_community=cc,
        block_cell=block_cell,
        street_codes=street_codes,
        community_codes=community_codes,
        cell_codes=cell_codes,
        street_names=join(cycled(STREET_WORDS, np.arange(len(streets), dtype=np.int64)), "街道"),
        community_words=words,
        community_names=community_names,
        cell_names=join(community_names[cc], "第", cell_seq.astype(np.str_), "网格"),
    )


def grid_layer(
    h: Hierarchy, lattice: Lattice, block_households: IntArray, rng: np.random.Generator
) -> Layer:
    """The grids layer: district, streets, communities, cells; counts summed up the tree.

    Every cell has a grid officer (网格员) with a mobile number except one, which the
    'every grid has an officer' check must find.
    """
    n_cells = len(h.cells)
    households = np.bincount(h.block_cell, weights=block_households, minlength=n_cells)
    households = households.astype(np.int64)
    per_household: FloatArray = rng.uniform(2.5, 3.1, n_cells)
    residents = np.rint(households * per_household).astype(np.int64)
    n_comm, n_street = len(h.communities), len(h.streets)

    def up(values: IntArray, parent: IntArray, size: int) -> IntArray:
        out: IntArray = np.bincount(parent, weights=values, minlength=size).astype(np.int64)
        return out

    comm_households = up(households, h.cell_community, n_comm)
    comm_residents = up(residents, h.cell_community, n_comm)
    street_households = up(comm_households, h.community_street, n_street)
    street_residents = up(comm_residents, h.community_street, n_street)

    officers = person_names(rng, n_cells).astype(object)
    phones = mobile_numbers(rng, n_cells).astype(object)
    vacant = int(rng.integers(0, n_cells))
    officers[vacant] = None
    phones[vacant] = None

    district_code = DISTRICT_CODE + "0" * 9
    none = np.full(1 + n_street + n_comm, None, dtype=object)
    geoms = np.concatenate(
        [
            lattice.index_rects(
                np.array([0]), np.array([lattice.nx]), np.array([0]), np.array([lattice.ny])
            ),
            lattice.index_rects(h.streets.i0, h.streets.i1, h.streets.j0, h.streets.j1),
            lattice.index_rects(
                h.communities.i0, h.communities.i1, h.communities.j0, h.communities.j1
            ),
            lattice.index_rects(h.cells.i0, h.cells.i1, h.cells.j0, h.cells.j1),
        ]
    )
    levels = np.repeat(
        np.array(["district", "street", "community", "grid"]), [1, n_street, n_comm, n_cells]
    )
    committees = join(h.community_names, "居民委员会")
    return Layer(
        codes=np.concatenate([[district_code], h.street_codes, h.community_codes, h.cell_codes]),
        columns={
            "level": levels,
            "parent_code": np.concatenate(
                [
                    [None],
                    np.full(n_street, district_code, dtype=object),
                    h.street_codes[h.community_street].astype(object),
                    h.community_codes[h.cell_community].astype(object),
                ]
            ),
            "name": np.concatenate(
                [[DISTRICT_NAME], h.street_names, h.community_names, h.cell_names]
            ),
            "officer": np.concatenate([none, officers]),
            "officer_phone": np.concatenate([none, phones]),
            "unit": np.concatenate(
                [
                    [f"{DISTRICT_NAME}人民政府"],
                    join(h.street_names, "办事处"),
                    committees,
                    committees[h.cell_community],
                ]
            ),
            "households": np.concatenate(
                [[street_households.sum()], street_households, comm_households, households]
            ),
            "residents": np.concatenate(
                [[street_residents.sum()], street_residents, comm_residents, residents]
            ),
        },
        geoms=geoms,
    )
