"""15-digit grid codes: levels and parents derived from the code itself."""

from __future__ import annotations

import pytest

from layers import grid_codes


@pytest.mark.parametrize(
    ("code", "level", "parent"),
    [
        ("231005000000000", "district", None),
        ("231005001000000", "street", "231005000000000"),
        ("231005001002000", "community", "231005001000000"),
        ("231005001002003", "grid", "231005001002000"),
    ],
)
def test_a_well_formed_code_names_its_level_and_parent(
    code: str, level: str, parent: str | None
) -> None:
    assert grid_codes.level_of(code) == level
    assert grid_codes.parent_of(code) == parent
    assert grid_codes.problem_with(code, level, parent) is None


@pytest.mark.parametrize(
    "code",
    [
        "23100500100200",
        "2310050010020031",
        "23100500100200a",
        "231005000001000",
        "231005001000003",
        "000000001002003",
    ],
)
def test_malformed_codes_are_refused(code: str) -> None:
    assert grid_codes.level_of(code) is None
    assert grid_codes.problem_with(code, "grid", None) is not None


def test_a_grid_row_with_a_community_code_or_a_wrong_parent_is_named() -> None:
    assert "community code" in (grid_codes.problem_with("231005001002000", "grid", None) or "")
    reason = grid_codes.problem_with("231005001002003", "grid", "231005001001000")
    assert reason is not None and "231005001002000" in reason
