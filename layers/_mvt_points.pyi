"""Type stub of the compiled point-layer vector tile encoder (layers/_mvt_points.pyx)."""

KINDS: dict[str, str]

class PointLayer:
    def __init__(
        self,
        name: bytes,
        keys: tuple[bytes, ...],
        kinds: bytes,
        xmin: float,
        ymax: float,
        fx: float,
        fy: float,
        extent: int,
        buffer: int,
    ) -> None: ...
    def encode_records(self, records: bytes) -> bytes: ...
    def encode_result(self, result: int) -> bytes: ...

def libpq_version() -> int: ...
