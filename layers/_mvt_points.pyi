"""Type stub of the compiled point-layer vector tile encoder (layers/_mvt_points.pyx)."""

KINDS: dict[str, str]

def encode_point_layer(
    name: bytes,
    records: bytes,
    keys: tuple[bytes, ...],
    kinds: bytes,
    xmin: float,
    ymax: float,
    fx: float,
    fy: float,
    extent: int,
    buffer: int,
) -> bytes: ...
def encode_point_rows(
    name: bytes,
    result: int,
    keys: tuple[bytes, ...],
    kinds: bytes,
    xmin: float,
    ymax: float,
    fx: float,
    fy: float,
    extent: int,
    buffer: int,
) -> bytes: ...
def libpq_version() -> int: ...
