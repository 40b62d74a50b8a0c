"""15-digit grid codes (Beijing DB11/T 2157-2023, DOMAIN.md).

code = 6-digit district (GB/T 2260) + 3 street + 3 community + 3 sequence.
Higher levels are coded with zeros below them, so a grid's parent code is
derived from its own code and the hierarchy can be checked without lookups.
"""

from __future__ import annotations

import re

LEVELS = ("district", "street", "community", "grid")
_CODE = re.compile(r"[0-9]{15}")
_PARTS = ((6, 9), (9, 12), (12, 15))  # street, community, sequence


def level_of(code: str) -> str | None:
    """The level a well-formed code denotes, or None when malformed."""
    if not _CODE.fullmatch(code) or code[:6] == "000000":
        return None
    nonzero = [code[a:b] != "000" for a, b in _PARTS]
    # Once a part is zero, every part below it must be zero too.
    depth = 0
    for flag in nonzero:
        if not flag:
            break
        depth += 1
    if any(nonzero[depth:]):
        return None
    return LEVELS[depth]


def parent_of(code: str) -> str | None:
    """The parent's code (None for a district or a malformed code)."""
    level = level_of(code)
    if level is None or level == "district":
        return None
    cut = {"street": 6, "community": 9, "grid": 12}[level]
    return code[:cut] + "0" * (15 - cut)


def problem_with(code: str, level: str, parent_code: str | None) -> str | None:
    """Why this (code, level, parent) is inconsistent, or None when it is fine."""
    actual = level_of(code)
    if actual is None:
        return "malformed grid code: 15 digits = district(6) + street(3) + community(3) + seq(3)"
    if actual != level:
        return f"code {code} is a {actual} code but the row says level {level!r}"
    expected = parent_of(code)
    if parent_code is not None and parent_code != expected:
        return f"parent must be {expected} (derived from the code), not {parent_code}"
    return None
