"""Map styles and legends, derived from the layer catalog.

The colour of every choice lives in `layers/catalog.py` (one declaration per layer);
this module only adds how a geometry kind is drawn (radius, weight, opacity). The map's
JavaScript receives `style_config()` and the legend is rendered from the same
`LayerStyle`, so a colour changed in the catalog changes the map and its legend together.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from layers.catalog import COLLECTIONS, GRIDS, Catalog, FieldKind, GeometryKind, LayerSpec

Lang = Literal["zh", "en"]

SYMBOLS: dict[GeometryKind, dict[str, Any]] = {
    GeometryKind.POINT: {
        "radius": 4,
        "weight": 1,
        "color": "#263238",
        "opacity": 0.9,
        "fill": True,
        "fillOpacity": 0.95,
    },
    GeometryKind.LINESTRING: {"weight": 3, "opacity": 0.9, "fill": False},
    GeometryKind.MULTIPOLYGON: {"weight": 1.5, "opacity": 0.9, "fill": True, "fillOpacity": 0.35},
}
"""How each geometry kind is drawn: presentation only, colours come from the catalog."""

LAYER_SYMBOLS: dict[str, dict[str, Any]] = {
    # Grids are the base of the map: outlines only, the choropleth fills them.
    GRIDS.id: {"fill": False, "weight": 1.2, "dashArray": "4 3"},
    # A restricted zone is an area to notice, not to hide what lies under it.
    "school_zones": {"fillOpacity": 0.08, "weight": 1, "dashArray": "6 4"},
}
"""Per-layer presentation overrides."""

VALUE_SYMBOLS: dict[str, dict[str, dict[str, Any]]] = {
    # Outer units of the hierarchy are drawn heavier, so streets and communities read at once.
    GRIDS.id: {
        "district": {"weight": 4, "dashArray": None},
        "street": {"weight": 3, "dashArray": None},
        "community": {"weight": 2, "dashArray": None},
    },
}
"""Per-value presentation overrides (keys are catalog choice keys)."""

DEFAULT_VISIBLE = frozenset(
    {"grids", "roads", "street_lamps", "schools", "venues", "illegal_buildings"}
)
"""Layers switched on when the map opens; the others are one click away in the layer control."""

META_LABELS: dict[str, tuple[str, str]] = {
    "code": ("编码", "code"),
    "area_m2": ("面积(平方米)", "area (m²)"),
    "version": ("版本", "version"),
    "created_at": ("创建时间", "created"),
    "updated_at": ("更新时间", "updated"),
    "count": ("聚合数量", "features in the cell"),
}
"""Labels of the properties every feature carries besides the catalog fields."""


@dataclass(frozen=True)
class LegendEntry:
    """One swatch of a layer's legend: a stored value, its labels and colour."""

    key: str
    zh: str
    en: str
    color: str

    def label(self, lang: Lang) -> str:
        """The label in the page language."""
        return self.zh if lang == "zh" else self.en


@dataclass(frozen=True)
class LayerStyle:
    """How one layer is coloured: by `field`'s choices, else one default colour."""

    layer: str
    zh: str
    en: str
    geometry: GeometryKind
    field: str | None
    field_zh: str | None
    field_en: str | None
    entries: tuple[LegendEntry, ...]
    default_color: str

    def color_of(self, value: str | None) -> str:
        """The colour of a feature whose style field holds `value`."""
        for entry in self.entries:
            if entry.key == value:
                return entry.color
        return self.default_color

    def label(self, lang: Lang) -> str:
        """The layer's name in the page language."""
        return self.zh if lang == "zh" else self.en

    def symbol(self) -> dict[str, Any]:
        """Leaflet path options for this layer (without colours)."""
        return {**SYMBOLS[self.geometry], **LAYER_SYMBOLS.get(self.layer, {})}


def layer_style(spec: LayerSpec) -> LayerStyle:
    """The style of a layer as its catalog declaration says."""
    if spec.style_field is None:
        return LayerStyle(
            spec.id, spec.zh, spec.en, spec.geometry, None, None, None, (), spec.default_color
        )
    field = spec.field(spec.style_field)
    entries = tuple(LegendEntry(c.key, c.zh, c.en, c.color) for c in field.choices)
    return LayerStyle(
        spec.id,
        spec.zh,
        spec.en,
        spec.geometry,
        field.name,
        field.zh,
        field.en,
        entries,
        spec.default_color,
    )


def layer_styles(catalog: Catalog = COLLECTIONS) -> tuple[LayerStyle, ...]:
    """The style of every published layer, in catalog order."""
    return tuple(layer_style(spec) for spec in catalog)


def _field_labels(spec: LayerSpec, lang: Lang) -> dict[str, dict[str, Any]]:
    """Popup labels of every property, with choice labels and the field kind."""
    labels: dict[str, dict[str, Any]] = {
        "code": {"label": META_LABELS["code"][0 if lang == "zh" else 1], "kind": "text"}
    }
    for f in spec.fields:
        entry: dict[str, Any] = {"label": f.zh if lang == "zh" else f.en, "kind": f.kind.value}
        if f.kind is FieldKind.CHOICE:
            entry["choices"] = {c.key: (c.zh if lang == "zh" else c.en) for c in f.choices}
        labels[f.name] = entry
    # Record keeping after the campaign attributes: popups list properties in this order.
    for name, (zh, en) in META_LABELS.items():
        kind = "datetime" if name.endswith("_at") else "meta"
        labels.setdefault(name, {"label": zh if lang == "zh" else en, "kind": kind})
    return labels


def style_config(lang: Lang, catalog: Catalog = COLLECTIONS) -> list[dict[str, Any]]:
    """Everything the browser needs to draw, label and pick each layer, in catalog order."""
    out = []
    for spec in catalog:
        style = layer_style(spec)
        out.append(
            {
                "id": spec.id,
                "name": style.label(lang),
                "geometry": spec.geometry.value,
                "field": style.field,
                "colors": {e.key: e.color for e in style.entries},
                "default_color": style.default_color,
                "symbol": style.symbol(),
                "value_symbols": VALUE_SYMBOLS.get(spec.id, {}),
                "visible": spec.id in DEFAULT_VISIBLE,
                "fields": _field_labels(spec, lang),
            }
        )
    return out
