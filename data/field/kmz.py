"""KMZ: a ZIP holding a KML (doc.kml by convention) and its images.

Only the KML is read, and only after the whole archive's directory has been checked, so a
hostile archive is refused before anything is decompressed: entries that expand past the
upload limit or by more than MAX_RATIO (zip bombs), names that would escape a folder if
anyone ever extracted them (`../`, absolute paths, drive letters, symlinks), encryption.
The KML itself is then read with a hard cap, since a ZIP's declared sizes can lie.
"""

from __future__ import annotations

import io
import re
import stat
import zipfile
from typing import Final

from data.field.model import InvalidUpload
from data.problems import Problem

MAX_ENTRIES: Final = 10_000
MAX_RATIO: Final = 100
"""Largest uncompressed/compressed size of an entry: text KML reaches 20-40, bombs ~1000."""
RATIO_FROM_BYTES: Final = 1 << 20
"""Entries smaller than this are not ratio-checked: tiny files compress absurdly well."""
_DRIVE: Final = re.compile(r"^[A-Za-z]:")


def _unsafe_name(name: str) -> str | None:
    if "\x00" in name:
        return "contains a NUL character"
    if name.startswith(("/", "\\")) or _DRIVE.match(name):
        return "is an absolute path"
    if ".." in re.split(r"[\\/]", name):
        return "climbs out of the archive with '..'"
    return None


def _check(archive: zipfile.ZipFile, source: str, max_bytes: int) -> list[zipfile.ZipInfo]:
    infos = archive.infolist()
    if len(infos) > MAX_ENTRIES:
        raise InvalidUpload(source, f"KMZ has {len(infos)} entries (at most {MAX_ENTRIES})")
    problems: list[Problem] = []
    total = 0
    for info in infos:
        name = info.filename
        unsafe = _unsafe_name(name)
        if unsafe:
            problems.append(Problem(f"KMZ entry {name!r} {unsafe}: path trick refused"))
        if stat.S_ISLNK(info.external_attr >> 16):
            problems.append(Problem(f"KMZ entry {name!r} is a symbolic link: refused"))
        if info.flag_bits & 0x1:
            problems.append(Problem(f"KMZ entry {name!r} is encrypted"))
        total += info.file_size
        if info.file_size > max_bytes:
            problems.append(
                Problem(
                    f"KMZ entry {name!r} expands to {info.file_size:,} bytes, over the "
                    f"{max_bytes:,}-byte limit (zip bomb?)"
                )
            )
        elif info.file_size > RATIO_FROM_BYTES and (
            info.compress_size == 0 or info.file_size / info.compress_size > MAX_RATIO
        ):
            ratio = info.file_size / max(info.compress_size, 1)
            problems.append(
                Problem(
                    f"KMZ entry {name!r} expands {ratio:,.0f}-fold (at most {MAX_RATIO}): "
                    "zip bomb refused"
                )
            )
    if total > 2 * max_bytes and not problems:
        problems.append(
            Problem(f"KMZ expands to {total:,} bytes in all, over {2 * max_bytes:,} (zip bomb?)")
        )
    if problems:
        raise InvalidUpload(source, problems)
    return infos


def _choose(infos: list[zipfile.ZipInfo]) -> zipfile.ZipInfo | None:
    kml = [i for i in infos if i.filename.lower().endswith(".kml") and not i.is_dir()]
    for info in kml:
        if info.filename.lower() == "doc.kml":
            return info
    root_level = [i for i in kml if "/" not in i.filename]
    candidates = root_level or kml
    return candidates[0] if candidates else None


def extract_kml(raw: bytes, source: str, max_bytes: int) -> tuple[bytes, list[Problem]]:
    """The KMZ's main KML, and warnings about what else it held."""
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as archive:
            infos = _check(archive, source, max_bytes)
            chosen = _choose(infos)
            if chosen is None:
                names = ", ".join(i.filename for i in infos[:10]) or "nothing"
                raise InvalidUpload(source, f"ZIP archive without a .kml file (holds {names})")
            with archive.open(chosen) as member:
                data = member.read(max_bytes + 1)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError) as exc:
        raise InvalidUpload(source, f"KMZ is not a readable ZIP archive: {exc}") from exc
    except (NotImplementedError, RuntimeError) as exc:
        raise InvalidUpload(source, f"KMZ entry cannot be decompressed: {exc}") from exc
    if len(data) > max_bytes:
        raise InvalidUpload(source, f"KML in the KMZ expands past {max_bytes:,} bytes")
    warnings: list[Problem] = []
    others = [i.filename for i in infos if i is not chosen and not i.is_dir()]
    if others:
        shown = ", ".join(others[:5]) + (" ..." if len(others) > 5 else "")
        warnings.append(
            Problem(
                f"read {chosen.filename}; {len(others)} other file(s) in the KMZ not imported "
                f"({shown})"
            )
        )
    return data, warnings
