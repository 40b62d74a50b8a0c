"""The road network: lattice lines as main/secondary/branch roads, commercial streets, back streets.

Roads run along the lattice lines between blocks (so grid boundaries follow roads, as
they do on the ground); the class of a line follows its index (every 4th line a main road,
every 2nd a secondary road, the rest branch roads).  A few stretches of non-main lines are
commercial streets; some blocks are crossed by a back street (背街小巷).  Long lines are
cut into pieces of about ten blocks, each its own road with its own code.  The per-class
style (lamp spacing and height, bin spacing, kerb offset) lives here because lamps, bins,
signs and venues are all placed relative to the road they belong to.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from data.demo.frames import Layer
from data.demo.geometry import FloatArray, IntArray, Lattice, Polylines, expand
from data.demo.grids import Hierarchy
from data.demo.names import (
    COMMERCIAL_WORDS,
    COMMUNITY_WORDS,
    EW_MAIN_WORDS,
    NS_MAIN_WORDS,
    StrArray,
    cn_numbers,
    cycled,
    join,
    numbered,
)
from data.demo.scales import ScaleSpec

PIECE_BLOCKS = 10
"""Lattice lines longer than this many blocks are cut into several roads."""


@dataclass(frozen=True)
class RoadStyle:
    """How a road class is furnished.

    Lamp spacing stays within factor x height of the default rule profile (cut-off 3 H,
    semi-cut-off 3.5 H, non-cut-off 4 H), and bin spacing within the CJJ 27 maxima, so that
    the only spacing gaps are the ones the generator makes on purpose.
    """

    lamp_spacing_m: float
    lamp_both_sides: bool
    pole_heights_m: tuple[float, ...]
    distribution: str
    kerb_offset_m: float
    """Distance of lamps from the centre line (within the 15 m road tolerance)."""
    bin_spacing_m: float


STYLES: dict[str, RoadStyle] = {
    "main": RoadStyle(32.0, True, (10.0, 12.0), "semi_cut_off", 12.0, 78.0),
    "secondary": RoadStyle(30.0, False, (8.0,), "non_cut_off", 9.0, 78.0),
    "branch": RoadStyle(26.0, False, (7.0,), "non_cut_off", 6.0, 98.0),
    "back_street": RoadStyle(22.0, False, (6.0,), "non_cut_off", 3.0, 98.0),
    "commercial": RoadStyle(23.0, True, (8.0,), "cut_off", 8.0, 48.0),
}
CLASSES = tuple(STYLES)


def style_values(attribute: str) -> FloatArray:
    """A numeric style attribute per class, indexable by a class index array."""
    out: FloatArray = np.array([float(getattr(STYLES[c], attribute)) for c in CLASSES])
    return out


@dataclass(frozen=True)
class Roads:
    """Road pieces in metres, and which piece runs along each lattice edge."""

    lines: Polylines
    class_index: IntArray
    names: StrArray
    codes: StrArray
    vertical_piece: IntArray
    """[i, bj]: the road on vertical line i between rows bj and bj + 1, or -1."""
    horizontal_piece: IntArray
    """[bi, j]: the road on horizontal line j between columns bi and bi + 1, or -1."""

    def __len__(self) -> int:
        return len(self.class_index)

    @property
    def road_class(self) -> StrArray:
        """Catalog road_class key of each piece."""
        out: StrArray = np.asarray(CLASSES, dtype=np.str_)[self.class_index]
        return out

    def layer(self) -> Layer:
        """The roads layer."""
        return Layer(
            self.codes,
            {"name": self.names, "road_class": self.road_class},
            self.lines.geoms(),
        )


def _line_class(k: int) -> str:
    return "main" if k % 4 == 0 else "secondary" if k % 2 == 0 else "branch"


def _line_names(count: int, vertical: bool, classes: list[str]) -> list[str]:
    """Names of the interior lattice lines 1..count: 太平路, 西三条路; 西长安街, 西光华街."""
    main_index = np.cumsum([c == "main" for c in classes]) - 1
    other_index = np.cumsum([c != "main" for c in classes]) - 1
    names: list[str] = []
    main_words = cycled(NS_MAIN_WORDS if vertical else EW_MAIN_WORDS, main_index)
    ordinals = cn_numbers(np.arange(1, count + 1, dtype=np.int64))
    other_words = cycled(COMMUNITY_WORDS, other_index)
    for k in range(count):
        if classes[k] == "main":
            names.append(f"{main_words[k]}路" if vertical else f"西{main_words[k]}街")
        else:
            names.append(f"西{ordinals[k]}条路" if vertical else f"西{other_words[k]}街")
    return names


Run = tuple[bool, int, int, int, str, str]
"""vertical, line index, first block, end block (exclusive), class, name."""


def _lattice_runs(spec: ScaleSpec, rng: np.random.Generator) -> list[Run]:
    runs: list[Run] = []
    for vertical, count, extent in (
        (True, spec.blocks_x - 1, spec.blocks_y),
        (False, spec.blocks_y - 1, spec.blocks_x),
    ):
        classes = [_line_class(k) for k in range(1, count + 1)]
        names = _line_names(count, vertical, classes)
        for k in range(count):
            parts = max(1, round(extent / PIECE_BLOCKS))
            cuts = np.linspace(0, extent, parts + 1).round().astype(int)
            for p in range(parts):
                name = names[k] if parts == 1 else f"{names[k]}{cn_numbers(np.array([p + 1]))[0]}段"
                runs.append((vertical, k + 1, int(cuts[p]), int(cuts[p + 1]), classes[k], name))
    # Commercial streets: two-block stretches carved out of non-main pieces.
    wanted = max(1, spec.blocks_x * spec.blocks_y // 48)
    candidates = [n for n, r in enumerate(runs) if r[4] != "main" and r[3] - r[2] >= 4]
    chosen = set(rng.choice(candidates, min(wanted, len(candidates)), replace=False).tolist())
    out: list[Run] = []
    commercial: list[Run] = []
    for n, (vertical, line, a, b, cls, name) in enumerate(runs):
        if n not in chosen:
            out.append((vertical, line, a, b, cls, name))
            continue
        start = int(rng.integers(a + 1, b - 2))
        out.append((vertical, line, a, start, cls, name))
        out.append((vertical, line, start + 2, b, cls, name))
        word = cycled(COMMERCIAL_WORDS, np.array([len(commercial)]))[0]
        commercial.append((vertical, line, start, start + 2, "commercial", f"{word}商业步行街"))
    return out + commercial


def build_roads(lattice: Lattice, h: Hierarchy, spec: ScaleSpec, rng: np.random.Generator) -> Roads:
    """All road pieces: lattice runs, commercial stretches, then back streets."""
    runs = _lattice_runs(spec, rng)
    vertical = np.array([r[0] for r in runs], dtype=bool)
    line = np.array([r[1] for r in runs], dtype=np.int64)
    first = np.array([r[2] for r in runs], dtype=np.int64)
    end = np.array([r[3] for r in runs], dtype=np.int64)
    run, k = expand(end - first + 1)
    along = first[run] + k
    vi = np.where(vertical[run], line[run], along)
    vj = np.where(vertical[run], along, line[run])
    coords = [np.column_stack([lattice.x[vi, vj], lattice.y[vi, vj]])]

    vertical_piece = np.full((lattice.nx + 1, lattice.ny), -1, dtype=np.int64)
    horizontal_piece = np.full((lattice.nx, lattice.ny + 1), -1, dtype=np.int64)
    edge_run, ek = expand(end - first)
    edge_along = first[edge_run] + ek
    is_v = vertical[edge_run]
    vertical_piece[line[edge_run][is_v], edge_along[is_v]] = edge_run[is_v]
    horizontal_piece[edge_along[~is_v], line[edge_run][~is_v]] = edge_run[~is_v]

    # Back streets: the north-south midline of some blocks, between the two compounds' halves.
    nblocks = lattice.nx * lattice.ny
    back = np.flatnonzero(rng.random(nblocks) < spec.back_street_share).astype(np.int64)
    bj, bi = np.divmod(back, lattice.nx)
    half = np.full(len(back), 0.5)
    bx, by = lattice.point(
        bi[:, None],
        bj[:, None],
        half[:, None],
        np.broadcast_to(np.array([0.0, 0.5, 1.0]), (len(back), 3)),
    )
    coords.append(np.stack([bx, by], axis=-1).reshape(-1, 2))
    community = h.block_community[back]
    order = np.lexsort((back, community))
    rank = np.empty(len(back), dtype=np.int64)
    counts = np.bincount(community, minlength=len(h.communities))
    _, within = expand(counts[np.unique(community)])
    rank[order] = within
    back_names = join(h.community_words[community], cn_numbers(rank + 1), "巷")

    sizes = np.concatenate([end - first + 1, np.full(len(back), 3)])
    starts = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    class_index = np.concatenate(
        [
            np.array([CLASSES.index(r[4]) for r in runs], dtype=np.int64),
            np.full(len(back), CLASSES.index("back_street"), dtype=np.int64),
        ]
    )
    names = np.concatenate([np.array([r[5] for r in runs], dtype=np.str_), back_names])
    return Roads(
        lines=Polylines(np.concatenate(coords).astype(np.float64), starts),
        class_index=class_index,
        names=names,
        codes=numbered("RD", len(class_index)),
        vertical_piece=vertical_piece,
        horizontal_piece=horizontal_piece,
    )
