"""Map styles and legends come from the catalog: one declaration, drawn and explained alike."""

from __future__ import annotations

import re
from dataclasses import replace

from layers.catalog import (
    COLLECTIONS,
    GRIDS,
    ILLEGAL_BUILDINGS,
    ROADS,
    STREET_LAMPS,
    Catalog,
    Choice,
    FieldKind,
    GeometryKind,
)
from map_ui.page import PageContext, render_map_page
from map_ui.styles import DEFAULT_VISIBLE, layer_style, layer_styles, style_config


def test_every_published_layer_has_a_style_in_catalog_order() -> None:
    assert [s.layer for s in layer_styles()] == list(COLLECTIONS.ids())
    assert "school_zones" in [c["id"] for c in style_config("zh")]
    assert set(COLLECTIONS.ids()) >= DEFAULT_VISIBLE


def test_lamp_colours_are_the_catalog_colours_of_lamp_status() -> None:
    style = layer_style(STREET_LAMPS)
    assert style.field == "status"
    status = STREET_LAMPS.field("status")
    assert {e.key: e.color for e in style.entries} == {c.key: c.color for c in status.choices}
    assert style.color_of("unlit") == status.choice("unlit").color
    assert style.color_of("no such value") == STREET_LAMPS.default_color


def test_the_browser_config_carries_colours_labels_and_choice_names() -> None:
    config = {c["id"]: c for c in style_config("zh")}
    lamps = config["street_lamps"]
    assert lamps["field"] == "status"
    assert lamps["colors"]["unlit"] == STREET_LAMPS.field("status").choice("unlit").color
    assert lamps["fields"]["status"]["label"] == "状态"
    assert lamps["fields"]["status"]["choices"]["unlit"] == "不亮"
    assert lamps["fields"]["code"]["label"] == "编码"
    english = {c["id"]: c for c in style_config("en")}
    assert english["street_lamps"]["fields"]["status"]["choices"]["unlit"] == "unlit"
    assert english["street_lamps"]["name"] == "Street lamps"
    roads = config["roads"]
    assert roads["colors"] == {c.key: c.color for c in ROADS.field("road_class").choices}
    assert config["illegal_buildings"]["field"] == "status"
    assert config["grids"]["symbol"]["fill"] is False


def test_a_colour_changed_in_the_catalog_changes_map_and_legend() -> None:
    status = STREET_LAMPS.field("status")
    recoloured = replace(
        status,
        choices=tuple(
            replace(c, color="#123456") if c.key == "unlit" else c for c in status.choices
        ),
    )
    lamps = replace(
        STREET_LAMPS,
        fields=tuple(recoloured if f.name == "status" else f for f in STREET_LAMPS.fields),
    )
    config = style_config("zh", Catalog((lamps,)))
    assert config[0]["colors"]["unlit"] == "#123456"
    assert layer_style(lamps).color_of("unlit") == "#123456"


def test_a_new_layer_is_styled_by_declaring_it() -> None:
    from layers.catalog import LayerField, LayerSpec

    hydrants = LayerSpec(
        id="hydrants",
        zh="消防栓",
        en="Hydrants",
        geometry=GeometryKind.POINT,
        code_prefix="H",
        style_field="state",
        fields=(
            LayerField(
                "state",
                FieldKind.CHOICE,
                "状态",
                "state",
                choices=(
                    Choice("ok", "正常", "ok", "#00ff00"),
                    Choice("dry", "无水", "dry", "#ff0000"),
                ),
            ),
        ),
    )
    (config,) = style_config("zh", Catalog((hydrants,)))
    assert config["name"] == "消防栓"
    assert config["colors"] == {"ok": "#00ff00", "dry": "#ff0000"}
    assert config["fields"]["state"]["choices"] == {"ok": "正常", "dry": "无水"}


def _legend_rows(html: str, layer: str) -> dict[str, str]:
    block = html.split(f'data-layer="{layer}"', 1)[1].split('class="civic-legend-layer"', 1)[0]
    return dict(re.findall(r'data-key="([^"]*)" data-color="([^"]*)"', block))


def test_the_legend_shows_every_catalog_value_with_its_colour() -> None:
    html = render_map_page(PageContext(lang="zh", path="/map"), (129.6, 44.58, 129.61, 44.59))
    for spec in COLLECTIONS:
        style = layer_style(spec)
        rows = _legend_rows(html, spec.id)
        if style.entries:
            assert rows == {e.key: e.color for e in style.entries}, spec.id
        else:
            assert rows == {"": spec.default_color}, spec.id
    for choice in ILLEGAL_BUILDINGS.field("status").choices:
        assert choice.zh in html
    for choice in GRIDS.field("level").choices:
        assert choice.zh in html
    english = render_map_page(PageContext(lang="en", path="/map"), None)
    assert "senior secondary school" in english and "不亮" not in english.split("<script>")[0]
