"""What a field observation's kind means for the layers: which asset, which new status.

Devices write kinds freely (GPX <type>, a CSV 类型 column, the upload's `kind` field), so
this vocabulary accepts the catalog's own words in English and Chinese and normalises them
to one `Observation`. A kind that is not here is kept on the point but changes no layer
(snap status `not_an_asset_kind`): guessing would change the wrong asset.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from layers.catalog import BINS, ILLEGAL_BUILDINGS, SIGNAGE, STREET_LAMPS, VENUES, LayerSpec

Action = Literal["status", "create"]


@dataclass(frozen=True)
class Observation:
    """An asset kind's effect: set `field` = `value` on the nearest asset, or create a record."""

    layer: LayerSpec
    action: Action
    field: str
    value: str

    @property
    def key(self) -> str:
        """The canonical kind, e.g. `street_lamps:unlit`, `venues:internet_cafe`."""
        return f"{self.layer.id}:{self.value}"


# The field each asset layer's observation sets, and the values an inspector may report.
STATUS_FIELDS: dict[str, tuple[LayerSpec, str, tuple[str, ...]]] = {
    "street_lamps": (STREET_LAMPS, "status", ("unlit", "damaged", "missing", "lit")),
    "bins": (BINS, "condition", ("damaged", "missing", "overflowing", "good")),
    "signage": (SIGNAGE, "condition", ("damaged", "missing", "good")),
}

_LAYER_WORDS: dict[str, str] = {
    "lamp": "street_lamps",
    "street_lamp": "street_lamps",
    "street_lamps": "street_lamps",
    "路灯": "street_lamps",
    "bin": "bins",
    "bins": "bins",
    "垃圾箱": "bins",
    "果皮箱": "bins",
    "sign": "signage",
    "signage": "signage",
    "board": "signage",
    "标识": "signage",
    "宣传牌": "signage",
    "公益广告": "signage",
}
_VALUE_WORDS: dict[str, str] = {
    "unlit": "unlit",
    "out": "unlit",
    "off": "unlit",
    "不亮": "unlit",
    "lit": "lit",
    "亮灯": "lit",
    "damaged": "damaged",
    "broken": "damaged",
    "损坏": "damaged",
    "破损": "damaged",
    "missing": "missing",
    "缺失": "missing",
    "缺损": "damaged",
    "overflowing": "overflowing",
    "满溢": "overflowing",
    "good": "good",
    "ok": "good",
    "完好": "good",
}
_ILLEGAL = {"illegal_building", "illegal_buildings", "违建", "违法建设", "两违"}
_VENUE_WORDS: dict[str, str] = {
    "网吧": "internet_cafe",
    "电子游戏厅": "game_hall",
    "游戏厅": "game_hall",
    "麻将馆": "mahjong_room",
    "ktv": "entertainment",
    "娱乐场所": "entertainment",
    "烟草销售点": "tobacco",
    "彩票销售点": "lottery",
}
_VENUE_TYPES = VENUES.field("venue_type").choice_keys()
_SPLIT = re.compile(r"[\s_:/\-.,，、]+")


def _status(layer_id: str, value: str) -> Observation | None:
    layer, field, allowed = STATUS_FIELDS[layer_id]
    return Observation(layer, "status", field, value) if value in allowed else None


def resolve_kind(kind: str | None, layer_hint: str | None = None) -> Observation | None:
    """The observation a kind stands for, or None when it names no asset change.

    Accepted: `lamp_unlit`, `street_lamps:unlit`, `路灯不亮`, `bin missing`, `signage_damaged`,
    `illegal_building`/`违建`, `venue_internet_cafe`/`网吧`; a bare value (`unlit`,
    `damaged`) when `layer_hint` names the layer.
    """
    if not kind:
        return None
    text = kind.strip().lower()
    if text in _ILLEGAL:
        return Observation(ILLEGAL_BUILDINGS, "create", "status", "reported")
    if text in _VENUE_WORDS:
        return Observation(VENUES, "create", "venue_type", _VENUE_WORDS[text])
    head, colon, tail = text.partition(":")
    if colon and head in STATUS_FIELDS and tail in _VALUE_WORDS:
        return _status(head, _VALUE_WORDS[tail])
    words = [w for w in _SPLIT.split(text) if w]
    if words and words[0] in ("venue", "venues", "场所") and len(words) > 1:
        venue_type = "_".join(words[1:])
        if venue_type in _VENUE_TYPES:
            return Observation(VENUES, "create", "venue_type", venue_type)
        return None
    layer_id = _LAYER_WORDS.get(words[0]) if words else None
    rest = words[1:] if layer_id else words
    if layer_id is None:
        # Chinese kinds are written without separators: 路灯不亮, 垃圾箱满溢.
        for word, lid in _LAYER_WORDS.items():
            if text.startswith(word) and text[len(word) :] in _VALUE_WORDS:
                return _status(lid, _VALUE_WORDS[text[len(word) :]])
        layer_id = _LAYER_WORDS.get((layer_hint or "").strip().lower())
        if layer_id is None and layer_hint in STATUS_FIELDS:
            layer_id = layer_hint
    if layer_id is None or len(rest) != 1 or rest[0] not in _VALUE_WORDS:
        return None
    return _status(layer_id, _VALUE_WORDS[rest[0]])
