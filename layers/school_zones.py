"""School zones: the profile's distances handed to the database that keeps the zones.

The zone of a school is drawn with the largest restriction distance the rule
profile sets for its school type (primary: 200 m for internet cafés; kindergarten:
100 m). The database rebuilds `school_zones` whenever these distances change, so
the service writes them at start-up only when the profile says something new.
"""

from __future__ import annotations

from sqlalchemy import Engine, text

from layers.catalog import SCHOOLS
from layers.profile import RuleProfile


def zone_distances(profile: RuleProfile) -> dict[str, float]:
    """Largest restricted distance per school type (types with no restriction: none)."""
    distances: dict[str, float] = {}
    for restriction in profile.school_zones.restrictions:
        for school_type in restriction.school_types:
            distances[school_type] = max(distances.get(school_type, 0.0), restriction.distance_m)
    known = set(SCHOOLS.field("school_type").choice_keys())
    return {k: v for k, v in distances.items() if k in known}


def sync_zone_distances(engine: Engine, profile: RuleProfile) -> bool:
    """Write the profile's distances if they differ from the stored ones; True if changed."""
    wanted = zone_distances(profile)
    with engine.begin() as conn:
        conn.execute(text("LOCK TABLE school_zone_distances IN EXCLUSIVE MODE"))
        stored = {
            row.school_type: row.distance_m
            for row in conn.execute(
                text("SELECT school_type, distance_m FROM school_zone_distances")
            )
        }
        if stored == wanted:
            return False
        conn.execute(text("DELETE FROM school_zone_distances"))
        if wanted:
            conn.execute(
                text("INSERT INTO school_zone_distances (school_type, distance_m) VALUES (:t, :d)"),
                [{"t": t, "d": d} for t, d in sorted(wanted.items())],
            )
        return True
