"""Field uploads from GPS units and phones, read into validated WGS-84 observations.

GPX, KML/KMZ, GeoJSON, CSV, NMEA 0183 and JPEG (EXIF GPS) files are detected by content,
parsed, checked point by point and converted from the declared CRS; nothing here touches
the database. `read_field_file` is the entry point; `stream_field_file` reads the same
in chunks, for a caller that stores one chunk while the next is read.
"""

from data.field.detect import detect_format
from data.field.model import (
    FORMATS,
    FieldPoint,
    FieldTrack,
    Format,
    InvalidUpload,
    ParsedUpload,
    TrackKind,
    combine,
)
from data.field.reader import (
    CHUNK_SIZE,
    CLOCK_SKEW,
    DEFAULT_MAX_BYTES,
    GC_PAUSE,
    read_field_file,
    stream_field_file,
)

__all__ = [
    "CHUNK_SIZE",
    "CLOCK_SKEW",
    "DEFAULT_MAX_BYTES",
    "FORMATS",
    "GC_PAUSE",
    "FieldPoint",
    "FieldTrack",
    "Format",
    "InvalidUpload",
    "ParsedUpload",
    "TrackKind",
    "combine",
    "detect_format",
    "read_field_file",
    "stream_field_file",
]
