"""The audit triggers: every write to a layer is recorded, whatever wrote it.

Write paths here are the ones that bypass HTTP: the import (as the CLI and the
demo use it) and SQL typed by hand. HTTP edits are in tests/gis_api/test_edit.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from shapely.geometry import Point, box
from sqlalchemy import Engine, text

from data.importer import import_file
from gis_api.auth import Principal, audit_context, audit_source
from gis_api.auth.audit import feature_history
from layers.catalog import CATALOG, COLLECTIONS
from tests.access import clear_accounts, load_tiny_city
from tests.conftest import truncate_layers
from tests.tiny_city import GRID_EAST, GRID_WEST, tiny_city, wgs, write_geojson


@pytest.fixture
def city(engine: Engine, tmp_path: Path) -> Engine:
    clear_accounts(engine)
    load_tiny_city(engine, tmp_path)
    return engine


def entries(engine: Engine, where: str = "true", **params: Any) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(
            text(f"SELECT * FROM audit_log WHERE {where} ORDER BY id"), params
        ).all()
    return [dict(r._mapping) for r in rows]


def test_every_layer_users_write_has_the_audit_triggers_and_derived_layers_none(
    session_engine: Engine,
) -> None:
    with session_engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT c.relname, array_agg(t.tgname ORDER BY t.tgname) FROM pg_trigger t "
                "JOIN pg_class c ON c.oid = t.tgrelid WHERE t.tgname LIKE 'audit_%' "
                "GROUP BY c.relname"
            )
        ).all()
    triggers: dict[str, list[str]] = {name: list(names) for name, names in rows}
    expected = ["audit_delete", "audit_insert", "audit_truncate", "audit_update"]
    for spec in COLLECTIONS:
        if spec.derived_from:
            assert spec.table not in triggers
        else:
            assert triggers[spec.table] == expected, spec.id
    assert set(triggers) == {spec.table for spec in CATALOG}


def test_an_import_records_every_inserted_row_with_its_values_and_geometry(city: Engine) -> None:
    lamps = entries(city, "layer = 'street_lamps' AND action = 'insert'")
    assert len(lamps) == 12
    first = next(e for e in lamps if e["new"]["code"] == "L-0003")
    assert first["actor_id"] is None and first["actor_name"] is None
    assert first["source"] == "database"
    assert first["old"] is None and first["new"]["status"] == "unlit"
    assert first["new"]["version"] == 1 and "geog" not in first["new"]
    expected = wgs(Point(15 + 30 * 3, 104))
    assert first["new"]["geometry"]["type"] == "Point"
    assert first["new"]["geometry"]["coordinates"] == pytest.approx([expected.x, expected.y])
    assert first["row_id"] == first["new"]["id"]
    # Derived rows (school zones) are rebuilt by the database, not recorded.
    assert entries(city, "layer = 'school_zones'") == []


def test_an_upsert_records_old_and_new_values(city: Engine, tmp_path: Path) -> None:
    bins = tiny_city()["bins"]
    bins.loc[bins["code"] == "B-2", "condition"] = "good"
    bins.loc[bins["code"] == "B-2", "geometry"] = wgs(Point(260, 150))
    import_file(
        city, write_geojson(bins, tmp_path / "bins.geojson"), CATALOG.get("bins"), mode="upsert"
    )
    updates = entries(city, "layer = 'bins' AND action = 'update'")
    # B-1 was written again unchanged: only its version moved, which is not a change.
    assert [u["new"]["code"] for u in updates] == ["B-2"]
    (update,) = updates
    assert update["old"]["condition"] == "damaged" and update["new"]["condition"] == "good"
    assert update["old"]["version"] == 1 and update["new"]["version"] == 2
    moved = wgs(Point(260, 150))
    assert update["new"]["geometry"]["coordinates"] == pytest.approx([moved.x, moved.y])
    assert update["old"]["geometry"] != update["new"]["geometry"]


def test_sql_by_hand_is_recorded_as_the_database_and_a_named_writer_as_itself(
    city: Engine,
) -> None:
    with city.begin() as conn:
        conn.execute(text("UPDATE street_lamps SET status = 'damaged' WHERE code = 'L-0001'"))
    with city.begin() as conn:
        user_id = conn.execute(
            text("INSERT INTO users (name, role) VALUES ('李娜', 'planner') RETURNING id")
        ).scalar_one()
        planner = Principal(user_id=user_id, name="李娜", role="planner")
        audit_context(conn, planner, "upload:42")
        conn.execute(text("DELETE FROM street_lamps WHERE code = 'L-0002'"))
    # The same pooled connection, a new transaction: the name does not carry over.
    with city.begin() as conn:
        conn.execute(text("UPDATE street_lamps SET status = 'missing' WHERE code = 'L-0004'"))
    with city.begin() as conn:
        audit_source(conn, "cli:demo")
        conn.execute(text("DELETE FROM bins WHERE code = 'B-1'"))

    by_hand, deleted, after, cli = entries(city, "action IN ('update', 'delete')")
    assert (by_hand["source"], by_hand["actor_name"]) == ("database", None)
    assert by_hand["old"]["status"] == "lit" and by_hand["new"]["status"] == "damaged"
    assert (deleted["source"], deleted["actor_name"], deleted["actor_id"]) == (
        "upload:42",
        "李娜",
        user_id,
    )
    assert deleted["old"]["code"] == "L-0002" and deleted["new"] is None
    assert deleted["old"]["geometry"]["type"] == "Point"
    assert (after["source"], after["actor_name"]) == ("database", None)
    assert (cli["source"], cli["actor_name"], cli["layer"]) == ("cli:demo", None, "bins")


def test_an_update_that_changes_nothing_is_not_recorded_but_a_grid_change_is(
    city: Engine,
) -> None:
    with city.begin() as conn:
        conn.execute(text("UPDATE street_lamps SET status = status"))
    assert entries(city, "action = 'update'") == []
    # Moving the west grid's east edge from x = 200 m to x = 170 m hands L-0006 (x = 195 m)
    # to the east grid: the asset's grid_id changes, and that is recorded.
    with city.begin() as conn:  # one statement, so the lamp moves once
        conn.execute(
            text(
                "UPDATE grids SET geom = ST_Multi(ST_GeomFromText("
                "CASE code WHEN :west_code THEN :west ELSE :east END, 4326)) "
                "WHERE code IN (:west_code, :east_code)"
            ),
            {
                "west_code": GRID_WEST,
                "east_code": GRID_EAST,
                "west": wgs(box(0, 0, 170, 200)).wkt,
                "east": wgs(box(170, 0, 400, 200)).wkt,
            },
        )
    moved = entries(city, "layer = 'street_lamps' AND action = 'update'")
    assert [m["new"]["code"] for m in moved] == ["L-0006"]
    assert moved[0]["old"]["grid_id"] != moved[0]["new"]["grid_id"]
    assert {e["layer"] for e in entries(city, "action = 'update'")} >= {"grids", "street_lamps"}


def test_a_truncate_is_recorded_and_a_history_starts_after_it(city: Engine, tmp_path: Path) -> None:
    with city.begin() as conn:
        conn.execute(text("UPDATE street_lamps SET status = 'damaged' WHERE id = 1"))
        assert len(feature_history(conn, "street_lamps", 1)) == 2
    truncate_layers(city)
    load_tiny_city(city, tmp_path)
    with city.connect() as conn:
        history = feature_history(conn, "street_lamps", 1)
    assert [h.action for h in history] == ["insert"]  # the new feature 1, not the old one
    truncates = entries(city, "action = 'truncate' AND layer = 'street_lamps'")
    assert truncates and truncates[-1]["row_id"] is None
