"""JPEG photos with EXIF GPS: one observation, and a copy fit to keep as evidence.

The position, altitude, time and bearing come from the EXIF GPS directory (time from
GPSDateStamp + GPSTimeStamp, which are UTC, else DateTimeOriginal with OffsetTimeOriginal).
Phones also write who took the photo and with what: make, model, serial numbers, owner
name, software, lens, maker notes (which hold more serials and sometimes face data), a
thumbnail, XMP and IPTC blocks, and further images after the end of the main one (MPF
depth maps and previews). The stored copy keeps none of that. It is rewritten losslessly,
segment by segment, so the evidence pixels are exactly the camera's: the compressed image
data, quantisation and Huffman tables are copied, every APPn and comment segment is
dropped (except Adobe APP14, which only says how to decode colours), and a new EXIF block
holds only the GPS directory, the date-time tags and the orientation (without it the photo
shows on its side). Everything after the image's end marker is cut.
"""

from __future__ import annotations

import io
import math
import struct
import warnings
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import Final

from PIL import Image, UnidentifiedImageError

from data.field.draft import Draft, Drafts, Issue
from data.field.model import InvalidUpload

EXIF_IFD: Final = 0x8769
GPS_IFD: Final = 0x8825
ORIENTATION: Final = 0x0112
DATETIME: Final = 0x0132
# DateTimeOriginal, DateTimeDigitized, OffsetTime(Original/Digitized), SubSecTime(...).
KEPT_EXIF_TAGS: Final = (0x9003, 0x9004, 0x9010, 0x9011, 0x9012, 0x9290, 0x9291, 0x9292)
KEPT_GPS_TAGS: Final = range(0, 32)
"""The standard GPS tags (GPSVersionID .. GPSHPositioningError): position and time only."""

_SOI: Final = b"\xff\xd8"
_EOI: Final = 0xD9
_SOS: Final = 0xDA
_APP14: Final = 0xEE
_COM: Final = 0xFE
_STANDALONE: Final = frozenset({0x01, *range(0xD0, 0xD8)})


def _text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        value = value.rstrip(b"\x00").decode("ascii", errors="replace")
    text = str(value).strip().rstrip("\x00")
    return text or None


def _float(value: object) -> float:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, ZeroDivisionError):
        return math.nan


def _degrees(value: object, ref: object, name: str, issues: list[Issue]) -> float:
    """EXIF (degrees, minutes, seconds) rationals and N/S/E/W to signed degrees."""
    parts = value if isinstance(value, tuple | list) else (value,)
    numbers = [_float(p) for p in parts[:3]]
    if not numbers:
        issues.append(Issue(f"EXIF {name} is empty", name, coordinate=True))
        return math.nan
    while len(numbers) < 3:
        numbers.append(0.0)
    degrees = numbers[0] + numbers[1] / 60.0 + numbers[2] / 3600.0
    hemisphere = (_text(ref) or "").upper()
    if hemisphere in ("S", "W"):
        return -degrees
    if hemisphere not in ("N", "E", ""):
        issues.append(
            Issue(
                f"EXIF {name}Ref {hemisphere!r} is not N/S/E/W",
                f"{name}Ref",
                hemisphere,
                coordinate=True,
            )
        )
        return math.nan
    return degrees


def _gps_time(gps: dict[int, object]) -> datetime | None:
    day, clock = _text(gps.get(29)), gps.get(7)
    if not day or not isinstance(clock, tuple | list) or len(clock) != 3:
        return None
    year, month, mday = (int(p) for p in day.replace("-", ":").split(":"))
    hours, minutes, seconds = (_float(p) for p in clock)
    start = datetime(year, month, mday, tzinfo=UTC)
    return start + timedelta(hours=hours, minutes=minutes, seconds=seconds)


def _camera_time(exif: Image.Exif, sub: dict[int, object]) -> datetime | None:
    """DateTimeOriginal (else DateTime) with its offset tag; naive when it has none."""
    candidates = (
        (_text(sub.get(0x9003)), _text(sub.get(0x9011))),
        (_text(exif.get(DATETIME)), _text(sub.get(0x9010))),
    )
    for stamp, offset in candidates:
        if not stamp:
            continue
        parsed = datetime.strptime(stamp, "%Y:%m:%d %H:%M:%S")
        if not offset:
            return parsed
        sign = -1 if offset.startswith("-") else 1
        hours, _, minutes = offset.lstrip("+-").partition(":")
        zone = timezone(sign * timedelta(hours=int(hours), minutes=int(minutes or 0)))
        return parsed.replace(tzinfo=zone)
    return None


def _segments(raw: bytes, source: str) -> list[tuple[int, bytes]]:
    """(marker, bytes) of each segment up to and including EOI; entropy data kept whole."""
    if not raw.startswith(_SOI):
        raise InvalidUpload(source, "not a JPEG image (no start-of-image marker)")
    out: list[tuple[int, bytes]] = [(0xD8, _SOI)]
    pos, size = 2, len(raw)
    while pos < size:
        if raw[pos] != 0xFF:
            raise InvalidUpload(source, f"JPEG structure corrupt at byte {pos}")
        while pos + 1 < size and raw[pos + 1] == 0xFF:
            pos += 1  # fill bytes
        if pos + 1 >= size:
            break
        marker = raw[pos + 1]
        if marker == _EOI:
            out.append((marker, raw[pos : pos + 2]))
            return out
        if marker in _STANDALONE:
            out.append((marker, raw[pos : pos + 2]))
            pos += 2
            continue
        if pos + 4 > size:
            break
        (length,) = struct.unpack(">H", raw[pos + 2 : pos + 4])
        end = pos + 2 + length
        if length < 2 or end > size:
            break
        if marker == _SOS:
            end = _scan_end(raw, end)
        out.append((marker, raw[pos:end]))
        pos = end
    raise InvalidUpload(source, "JPEG is truncated: no end-of-image marker")


def _scan_end(raw: bytes, pos: int) -> int:
    """Where the entropy-coded data after an SOS header ends: at the next real marker."""
    while True:
        found = raw.find(b"\xff", pos)
        if found < 0 or found + 1 >= len(raw):
            return len(raw)
        following = raw[found + 1]
        if following == 0x00 or 0xD0 <= following <= 0xD7 or following == 0xFF:
            pos = found + 1 if following == 0xFF else found + 2
            continue
        return found


def _clean_exif(exif: Image.Exif, sub: dict[int, object], gps: dict[int, object]) -> bytes:
    clean = Image.Exif()
    for tag in (ORIENTATION, DATETIME):
        if tag in exif:
            clean[tag] = exif[tag]
    kept_sub = {t: sub[t] for t in KEPT_EXIF_TAGS if t in sub}
    if kept_sub:
        clean[EXIF_IFD] = kept_sub
    clean[GPS_IFD] = {t: gps[t] for t in KEPT_GPS_TAGS if t in gps}
    return clean.tobytes()


def clean_jpeg(raw: bytes, source: str, exif_block: bytes) -> bytes:
    """The JPEG with only `exif_block` as metadata, its image data untouched (see module)."""
    body = bytearray(_SOI)
    if len(exif_block) + 2 > 0xFFFF:
        raise InvalidUpload(source, "GPS metadata too large for one EXIF segment")
    body += b"\xff\xe1" + struct.pack(">H", len(exif_block) + 2) + exif_block
    for marker, data in _segments(raw, source)[1:]:
        if 0xE0 <= marker <= 0xEF and not (marker == _APP14 and data[4:9] == b"Adobe"):
            continue
        if marker == _COM:
            continue
        body += data
    return bytes(body)


def read_jpeg(raw: bytes, source: str, local_tz: tzinfo) -> Drafts:
    """One point (row 1) from a photo's EXIF GPS, carrying the cleaned photo."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(raw))
            if image.format not in ("JPEG", "MPO"):  # MPO: a phone JPEG with MPF previews
                raise InvalidUpload(source, f"not a JPEG image ({image.format})")
            exif = image.getexif()
            sub = dict(exif.get_ifd(EXIF_IFD))
            gps = dict(exif.get_ifd(GPS_IFD))
            size = image.size
            image.draft("RGB", (max(1, image.width // 8), max(1, image.height // 8)))
            image.load()
    except InvalidUpload:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise InvalidUpload(source, f"image too large to accept: {exc}") from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, struct.error) as exc:
        raise InvalidUpload(
            source, f"not a readable JPEG image (corrupt or truncated): {exc}"
        ) from exc
    if 2 not in gps or 4 not in gps:
        raise InvalidUpload(
            source,
            "JPEG has no EXIF GPS position (GPSLatitude/GPSLongitude): turn on the camera's "
            "location setting, or record the point as a waypoint",
        )
    issues: list[Issue] = []
    lat = _degrees(gps[2], gps.get(1), "GPSLatitude", issues)
    lon = _degrees(gps[4], gps.get(3), "GPSLongitude", issues)
    draft = Draft(1, lon, lat, "photo")
    try:
        draft.time = _gps_time(gps) or _camera_time(exif, sub)
    except (ValueError, OverflowError) as exc:
        issues.append(Issue(f"EXIF time is not readable: {exc}", "time"))
    if 6 in gps:
        altitude = _float(gps[6])
        below = _text(gps.get(5)) in ("\x01", "1") or gps.get(5) in (1, b"\x01")
        draft.elevation = -altitude if below else altitude
    if 31 in gps:
        draft.accuracy = _float(gps[31])
    if 11 in gps:
        dop = _float(gps[11])
        if _text(gps.get(10)) == "3":
            draft.pdop = dop
        else:
            draft.hdop = dop
    satellites = _text(gps.get(8))
    if satellites and satellites.isdigit():
        draft.satellites = int(satellites)
    if 17 in gps:
        draft.properties["direction_deg"] = _float(gps[17])
        draft.properties["direction_ref"] = _text(gps.get(16)) or "T"
    if 13 in gps:
        draft.properties["speed"] = _float(gps[13])
        draft.properties["speed_unit"] = {"K": "km/h", "M": "mph", "N": "knots"}.get(
            _text(gps.get(12)) or "K", "km/h"
        )
    draft.properties["width"], draft.properties["height"] = size
    draft.photo = clean_jpeg(raw, source, _clean_exif(exif, sub, gps))
    draft.issues = issues or None
    return Drafts(
        "jpeg",
        points=[draft],
        naive_tz=local_tz,
        naive_why="photo time without OffsetTimeOriginal or GPS time",
    )
