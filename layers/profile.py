"""The rule profile: every threshold a check uses, with defaults from DOMAIN.md.

Cities set different targets, so no threshold is a constant in code: the
service loads `profiles/default.toml` and deep-merges a city's file over it.
Unknown keys are refused, so a typo cannot silently keep a default.
"""

from __future__ import annotations

import tomllib
from datetime import date
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from layers.catalog import SCHOOLS, VENUES, Choice

DEFAULT_PROFILE = Path(__file__).with_name("profiles") / "default.toml"

RoadClass = Literal["main", "secondary", "branch", "back_street", "commercial"]
Rate = float


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LampRules(_Section):
    """Street lamps: lighting and installation rates, spacing."""

    lighting_rate: dict[RoadClass, Rate]
    lighting_rate_by_placement: dict[Literal["stairwell", "corridor", "compound"], Rate]
    installation_rate: Rate = Field(ge=0, le=1)
    spacing_factor: dict[Literal["cut_off", "semi_cut_off", "non_cut_off"], float]
    default_pole_height_m: dict[RoadClass, float]
    max_spacing_m: dict[RoadClass, float] = {}
    road_tolerance_m: float = Field(gt=0)


class BinRules(_Section):
    """Bins: condition rate, service radius, spacing along roads."""

    condition_rate: Rate = Field(ge=0, le=1)
    service_radius_m: float = Field(gt=0)
    max_spacing_m: dict[RoadClass, float]
    road_tolerance_m: float = Field(gt=0)


class ZoneRestriction(_Section):
    """Venues of these types may not lie within `distance_m` of these schools."""

    venue_types: list[str]
    school_types: list[str]
    distance_m: float = Field(gt=0)

    @field_validator("venue_types")
    @classmethod
    def _known_venue_types(cls, value: list[str]) -> list[str]:
        return _known(value, VENUES.field("venue_type").choices)

    @field_validator("school_types")
    @classmethod
    def _known_school_types(cls, value: list[str]) -> list[str]:
        return _known(value, SCHOOLS.field("school_type").choices)


def _known(value: list[str], choices: tuple[Choice, ...]) -> list[str]:
    """Types must be catalog keys: a misspelt type would silently never match."""
    keys = [c.key for c in choices]
    unknown = [v for v in value if v not in keys]
    if unknown:
        raise ValueError(f"unknown type(s) {', '.join(unknown)}; known: {', '.join(keys)}")
    return value


class SchoolZoneRules(_Section):
    """Restricted venues around schools and how distance is measured."""

    method: Literal["boundary", "walking"]
    restrictions: list[ZoneRestriction]


class SignageRules(_Section):
    """Quotas of fixed boards and their placement."""

    community_quota: int = Field(ge=0)
    compound_quota: int = Field(ge=0)
    building_quota: int = Field(ge=0)
    building_distance_m: float = Field(gt=0)
    entrance_distance_m: float = Field(gt=0)
    main_road_ad_spacing_m: float = Field(gt=0)


class IllegalBuildingRules(_Section):
    """Case deadlines and the weekly report day."""

    stop_work_hours: int = Field(ge=0)
    penalty_days: int = Field(ge=0)
    demolition_days: int = Field(ge=0)
    weekly_report_weekday: int = Field(ge=1, le=7)


class Calendar(_Section):
    """Working-day calendar for deadlines counted in working days."""

    weekend: list[int]
    holidays: list[date] = []
    extra_working_days: list[date] = []

    def is_working_day(self, day: date) -> bool:
        """Whether `day` is a working day (holidays and 调休 make-up days applied)."""
        if day in self.extra_working_days:
            return True
        return day.isoweekday() not in self.weekend and day not in self.holidays


class FieldRules(_Section):
    """Field uploads: snapping and patrol coverage."""

    snap_tolerance_m: float = Field(gt=0)
    uere_m: float = Field(gt=0)
    max_snap_accuracy_m: float = Field(gt=0)
    patrol_distance_m: float = Field(gt=0)
    max_upload_bytes: int = Field(default=52_428_800, gt=0)
    outside_jurisdiction: Literal["refuse", "flag"] = "refuse"
    illegal_building_square_m: float = Field(default=4.0, gt=0)


class GridRules(_Section):
    """Grid topology tolerances."""

    sliver_area_m2: float = Field(ge=0)


class RuleProfile(_Section):
    """All thresholds of all checks."""

    name: str
    lamps: LampRules
    bins: BinRules
    school_zones: SchoolZoneRules
    signage: SignageRules
    illegal_buildings: IllegalBuildingRules
    calendar: Calendar
    field: FieldRules
    grids: GridRules


class InvalidProfile(ValueError):
    """A profile file that cannot be read or does not validate."""


def _deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except OSError as exc:
        raise InvalidProfile(f"cannot read rule profile {path}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise InvalidProfile(f"rule profile {path} is not valid TOML: {exc}") from exc


def load_profile(path: Path | None = None) -> RuleProfile:
    """The default profile, with the city's file at `path` merged over it."""
    data = _read_toml(DEFAULT_PROFILE)
    if path is not None:
        data = _deep_merge(data, _read_toml(path))
    try:
        return RuleProfile.model_validate(data)
    except ValidationError as exc:
        where = path or DEFAULT_PROFILE
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise InvalidProfile(f"rule profile {where}: {problems}") from exc
