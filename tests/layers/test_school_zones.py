"""School zones: the database keeps each school's restricted zone as the profile says."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, text

from data.importer import import_file
from layers.catalog import CATALOG
from layers.profile import load_profile
from layers.school_zones import sync_zone_distances, zone_distances
from tests.tiny_city import tiny_city, write_geojson


def load(engine: Engine, tmp_path: Path) -> None:
    city = tiny_city()
    for spec in CATALOG:
        import_file(engine, write_geojson(city[spec.id], tmp_path / f"{spec.id}.geojson"), spec)


def test_zone_distances_take_the_largest_restriction_per_school_type() -> None:
    distances = zone_distances(load_profile())
    assert distances["primary"] == 200.0
    assert distances["kindergarten"] == 100.0


def test_a_new_school_gets_its_200_m_zone_and_a_moved_school_moves_it(
    engine: Engine, tmp_path: Path
) -> None:
    sync_zone_distances(engine, load_profile())
    load(engine, tmp_path)
    with engine.connect() as conn:
        zone = conn.execute(
            text(
                "SELECT z.distance_m, ST_AsText(z.geom), ST_AsText(s.geom) "
                "FROM school_zones z JOIN schools s USING (code) WHERE code = 'SCH-1'"
            )
        ).one()
    assert zone.distance_m == 200.0
    # A vertex of the zone lies 200 m (within the drawing tolerance) from the campus.
    with engine.connect() as conn:
        far = conn.execute(
            text(
                "SELECT max(ST_Distance(s.geog, (dp).geom::geography)) FROM school_zones z "
                "JOIN schools s USING (code), ST_DumpPoints(z.geom) dp WHERE code = 'SCH-1'"
            )
        ).scalar_one()
    assert abs(far - 200.0) < 0.5
    # The café 150 m away is inside the zone.
    with engine.connect() as conn:
        inside = conn.execute(
            text(
                "SELECT ST_Intersects(z.geom, v.geom) FROM school_zones z, venues v "
                "WHERE z.code = 'SCH-1' AND v.code = 'V-1'"
            )
        ).scalar_one()
    assert inside
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE schools SET geom = ST_Translate(geom, 0.01, 0) WHERE code = 'SCH-1'")
        )
    with engine.connect() as conn:
        inside = conn.execute(
            text(
                "SELECT ST_Intersects(z.geom, v.geom) FROM school_zones z, venues v "
                "WHERE z.code = 'SCH-1' AND v.code = 'V-1'"
            )
        ).scalar_one()
    assert not inside  # 0.01 degree east is ~790 m


def test_a_city_profile_with_another_distance_redraws_every_zone(
    engine: Engine, tmp_path: Path
) -> None:
    sync_zone_distances(engine, load_profile())
    load(engine, tmp_path)
    city = tmp_path / "city.toml"
    city.write_text(
        "[[school_zones.restrictions]]\nvenue_types = ['internet_cafe']\n"
        "school_types = ['primary', 'middle']\ndistance_m = 100\n",
        encoding="utf-8",
    )
    assert sync_zone_distances(engine, load_profile(city)) is True
    assert sync_zone_distances(engine, load_profile(city)) is False
    with engine.connect() as conn:
        distance = conn.execute(
            text("SELECT distance_m FROM school_zones WHERE code = 'SCH-1'")
        ).scalar_one()
    assert distance == 100.0
    sync_zone_distances(engine, load_profile())


def test_deleting_a_school_removes_its_zone(engine: Engine, tmp_path: Path) -> None:
    sync_zone_distances(engine, load_profile())
    load(engine, tmp_path)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM entrances WHERE owner_layer = 'schools'"))
        conn.execute(text("DELETE FROM schools WHERE code = 'SCH-1'"))
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM school_zones")).scalar_one() == 0
