"""Which format an upload is, from its bytes: the file name is only a hint.

Phones and field apps name files carelessly (a GPX saved as .txt, a CSV called .gpx by a
converter, WeChat renaming attachments), so every decision is made on content: magic
bytes for JPEG and ZIP (KMZ), the root element for XML (GPX or KML), the first character
for JSON, the sentence shape for NMEA, and CSV for any other text. The name matters only
to refuse a file that claims to be a photo but is not one.
"""

from __future__ import annotations

import codecs
import re
from pathlib import PurePath
from typing import Final

from data.field import nmea, safexml
from data.field.model import Format, InvalidUpload

_HEAD: Final = 65536
_IMAGE_SUFFIXES: Final = frozenset(
    {".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".heic", ".heif", ".gif", ".webp", ".tif", ".tiff"}
)
_OTHER_IMAGES: Final = (
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
)
_CONTROL: Final = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _other_image(raw: bytes) -> str | None:
    for magic, name in _OTHER_IMAGES:
        if raw.startswith(magic):
            return name
    if raw[4:8] == b"ftyp" and raw[8:12] in (b"heic", b"heix", b"mif1", b"msf1", b"heif"):
        return "HEIC"
    if raw[:4] == b"RIFF" and raw[8:12] == b"WEBP":
        return "WebP"
    return None


def head_text(raw: bytes) -> str | None:
    """The first 64 KiB as text (UTF-8/16 by BOM, UTF-8, GB18030), None if it is binary."""
    head = raw[:_HEAD]
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        candidates: tuple[str, ...] = ("utf-16",)
    else:
        candidates = ("utf-8-sig", "gb18030")
    for encoding in candidates:
        try:
            text = codecs.getincrementaldecoder(encoding)().decode(head, final=len(raw) <= _HEAD)
        except UnicodeDecodeError:
            continue
        if len(_CONTROL.findall(text[:4096])) > 0.01 * max(len(text[:4096]), 1) or "\x00" in text:
            return None
        return text
    return None


def _looks_like_nmea(text: str) -> bool:
    lines = [line for line in text.splitlines()[:40] if line.strip()][:20]
    if not lines:
        return False
    hits = sum(1 for line in lines if nmea.SHAPE.search(line[:64]) is not None)
    return hits * 2 >= len(lines)


def detect_format(raw: bytes, filename: str | None) -> Format:
    """The upload's format; InvalidUpload when it is empty or none of the known ones."""
    source = filename or "upload"
    suffix = PurePath(filename).suffix.lower() if filename else ""
    claims_image = suffix in _IMAGE_SUFFIXES
    if not raw.strip():
        raise InvalidUpload(source, "empty file" if not raw else "empty file (only whitespace)")
    if raw.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    other = _other_image(raw)
    if other is not None:
        raise InvalidUpload(
            source, f"{other} images are not read: upload photos as JPEG with EXIF GPS"
        )
    if raw.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return "kmz"
    text = head_text(raw)
    if text is None:
        if claims_image:
            raise InvalidUpload(
                source, f"named {suffix} but not a JPEG image (unknown binary data)"
            )
        raise InvalidUpload(
            source,
            "unknown format: binary data that is not a JPEG photo or a KMZ archive "
            "(accepted: GPX, KML, KMZ, GeoJSON, CSV, NMEA, JPEG)",
        )
    start = text.lstrip("\ufeff \t\r\n")
    if start.startswith("<"):
        root = safexml.local_name(safexml.root_tag(raw, source))
        if root in ("gpx", "kml"):
            return "gpx" if root == "gpx" else "kml"
        raise InvalidUpload(source, f"XML root element <{root}> is neither GPX <gpx> nor KML <kml>")
    if start.startswith(("{", "[")):
        return "geojson"
    if _looks_like_nmea(start):
        return "nmea"
    if claims_image:
        raise InvalidUpload(source, f"named {suffix} but not a JPEG image (it is text)")
    return "csv"
