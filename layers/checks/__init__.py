"""Campaign rules as checks: each answers pass/fail for a scope, with evidence on the map."""

from __future__ import annotations

from layers.checks.bins import BinCondition, BinCoverage
from layers.checks.framework import CheckError, Rule
from layers.checks.grid_topology import GridTopology
from layers.checks.illegal_buildings import IllegalBuildingDeadlines
from layers.checks.lamp_lighting import LampLightingRate
from layers.checks.school_zones import SchoolZones
from layers.checks.signage import SignageEntrances, SignageQuota
from layers.checks.spacing import BinSpacing, LampSpacing

RULES: dict[str, Rule] = {
    rule.id: rule
    for rule in (
        LampLightingRate(),
        LampSpacing(),
        BinCondition(),
        BinCoverage(),
        BinSpacing(),
        SchoolZones(),
        SignageQuota(),
        SignageEntrances(),
        IllegalBuildingDeadlines(),
        GridTopology(),
    )
}
"""Every rule, by its id (ids are a contract: HTTP paths and the CLI use them)."""


def get_rule(rule_id: str) -> Rule:
    """The rule called `rule_id`; CheckError naming the known ones."""
    try:
        return RULES[rule_id]
    except KeyError:
        raise CheckError(f"unknown rule {rule_id!r}; rules: {', '.join(RULES)}") from None
