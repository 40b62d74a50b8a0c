"""The one declaration of every campaign layer.

Everything layer-shaped is derived from these declarations: the SQLAlchemy
tables (and so the migrations' reference), import validation, export, and
later the API collections, tiles, map styles and legends.  Adding a layer is
one `LayerSpec` here plus an alembic migration.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import StrEnum


class GeometryKind(StrEnum):
    """Storage geometry of a layer (always EPSG:4326, see docs/DATA_MODEL.md)."""

    POINT = "POINT"
    LINESTRING = "LINESTRING"
    MULTIPOLYGON = "MULTIPOLYGON"


class FieldKind(StrEnum):
    """Column types a layer field may have."""

    TEXT = "text"
    INTEGER = "integer"
    FLOAT = "float"
    BOOLEAN = "boolean"
    DATE = "date"
    DATETIME = "datetime"
    CHOICE = "choice"


@dataclass(frozen=True)
class Choice:
    """One allowed value of a choice field, with its labels and map colour."""

    key: str
    zh: str
    en: str
    color: str = "#808080"


@dataclass(frozen=True)
class Reference:
    """A field holding the human code of a row of another layer (a foreign key)."""

    layer: str
    on_delete: str = "SET NULL"


@dataclass(frozen=True)
class LayerField:
    """An attribute column of a layer."""

    name: str
    kind: FieldKind
    zh: str
    en: str
    required: bool = False
    choices: tuple[Choice, ...] = ()
    default: str | int | float | bool | None = None
    pattern: str | None = None  # regular expression a text value must match
    minimum: float | None = None
    maximum: float | None = None
    references: Reference | None = None

    def choice_keys(self) -> tuple[str, ...]:
        """The stored values allowed in this field."""
        return tuple(c.key for c in self.choices)

    def choice(self, key: str) -> Choice:
        """The choice stored as `key`."""
        for c in self.choices:
            if c.key == key:
                return c
        raise KeyError(key)


@dataclass(frozen=True)
class LayerSpec:
    """Declaration of one layer: table, geometry, fields, labels and style."""

    id: str
    zh: str
    en: str
    geometry: GeometryKind
    fields: tuple[LayerField, ...]
    code_prefix: str
    # The field whose value colours the feature on the map and in the legend.
    style_field: str | None = None
    # Fields usable for OGC `datetime` queries, besides created/updated.
    time_fields: tuple[str, ...] = ()
    # Whether rows carry `grid_id`, kept correct by triggers (all but grids).
    in_grid: bool = True
    # Geodesic area in m² kept as a generated column (illegal buildings).
    geodesic_area: bool = False
    # Component classes (部件) of DOMAIN.md, major+minor: the 16-digit
    # component code is district(6) + major(2) + minor(2) + serial(6).
    # The minor codes are *unconfirmed* (DOMAIN.md); cities may differ.
    component_class: str | None = None
    default_color: str = "#3388ff"
    # Regular expression every human code must match (grids: 15 digits).
    code_pattern: str | None = None
    # A derived layer is computed by the database from another layer (never imported).
    derived_from: str | None = None

    @property
    def table(self) -> str:
        """The PostgreSQL table name (same as the layer id)."""
        return self.id

    def field(self, name: str) -> LayerField:
        """The declared field called `name`."""
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(f"layer {self.id!r} has no field {name!r}")

    def field_names(self) -> tuple[str, ...]:
        """Names of the declared attribute fields, in order."""
        return tuple(f.name for f in self.fields)


def _choices(*items: tuple[str, str, str, str]) -> tuple[Choice, ...]:
    return tuple(Choice(key, zh, en, color) for key, zh, en, color in items)


CODE_15 = r"^[0-9]{15}$"
CODE_16 = r"^[0-9]{16}$"

CONDITION = _choices(
    ("good", "完好", "good", "#2e7d32"),
    ("damaged", "破损", "damaged", "#ef6c00"),
    ("missing", "缺失", "missing", "#c62828"),
)

_COMPONENT_CODE = LayerField(
    "component_code", FieldKind.TEXT, "部件编码", "component code", pattern=CODE_16
)
_ROAD_CODE = LayerField(
    "road_code", FieldKind.TEXT, "所在道路", "road", references=Reference("roads")
)
_NAME = LayerField("name", FieldKind.TEXT, "名称", "name")

GRIDS = LayerSpec(
    id="grids",
    zh="网格",
    en="Grids",
    geometry=GeometryKind.MULTIPOLYGON,
    code_prefix="",
    code_pattern=CODE_15,
    in_grid=False,
    style_field="level",
    fields=(
        LayerField(
            "level",
            FieldKind.CHOICE,
            "层级",
            "level",
            required=True,
            choices=_choices(
                ("district", "区", "district", "#4a148c"),
                ("street", "街道", "street office", "#6a1b9a"),
                ("community", "社区", "community", "#8e24aa"),
                ("grid", "网格", "grid", "#ab47bc"),
            ),
        ),
        LayerField(
            "parent_code",
            FieldKind.TEXT,
            "上级编码",
            "parent code",
            pattern=CODE_15,
            references=Reference("grids"),
        ),
        LayerField("name", FieldKind.TEXT, "名称", "name", required=True),
        LayerField("officer", FieldKind.TEXT, "网格员", "grid officer"),
        LayerField("officer_phone", FieldKind.TEXT, "联系电话", "officer phone"),
        LayerField("unit", FieldKind.TEXT, "责任单位", "responsible unit"),
        LayerField("households", FieldKind.INTEGER, "户数", "households", minimum=0),
        LayerField("residents", FieldKind.INTEGER, "人口", "residents", minimum=0),
    ),
)

ROADS = LayerSpec(
    id="roads",
    zh="道路",
    en="Roads",
    geometry=GeometryKind.LINESTRING,
    code_prefix="RD",
    style_field="road_class",
    fields=(
        _NAME,
        LayerField(
            "road_class",
            FieldKind.CHOICE,
            "道路等级",
            "road class",
            required=True,
            choices=_choices(
                ("main", "主干道", "main road", "#d32f2f"),
                ("secondary", "次干道", "secondary road", "#f57c00"),
                ("branch", "支路", "branch road", "#fbc02d"),
                ("back_street", "背街小巷", "back street", "#9e9e9e"),
                ("commercial", "商业街", "commercial street", "#7b1fa2"),
            ),
        ),
    ),
)

STREET_LAMPS = LayerSpec(
    id="street_lamps",
    zh="路灯",
    en="Street lamps",
    geometry=GeometryKind.POINT,
    code_prefix="L",
    style_field="status",
    time_fields=("last_inspected",),
    component_class="0110",
    fields=(
        _COMPONENT_CODE,
        _ROAD_CODE,
        LayerField(
            "placement",
            FieldKind.CHOICE,
            "设置位置",
            "placement",
            required=True,
            default="road",
            choices=_choices(
                ("road", "道路", "road", "#1565c0"),
                ("stairwell", "楼道", "stairwell", "#5e35b1"),
                ("corridor", "走廊", "corridor", "#00897b"),
                ("compound", "小区内", "inside a compound", "#6d4c41"),
            ),
        ),
        LayerField(
            "pole_height_m",
            FieldKind.FLOAT,
            "灯杆高度(米)",
            "pole height (m)",
            minimum=0.5,
            maximum=60,
        ),
        LayerField(
            "light_distribution",
            FieldKind.CHOICE,
            "配光类型",
            "light distribution",
            choices=_choices(
                ("cut_off", "截光型", "cut-off", "#1565c0"),
                ("semi_cut_off", "半截光型", "semi-cut-off", "#42a5f5"),
                ("non_cut_off", "非截光型", "non-cut-off", "#90caf9"),
            ),
        ),
        LayerField(
            "status",
            FieldKind.CHOICE,
            "状态",
            "status",
            required=True,
            default="lit",
            choices=_choices(
                ("lit", "亮灯", "lit", "#fdd835"),
                ("unlit", "不亮", "unlit", "#424242"),
                ("damaged", "损坏", "damaged", "#ef6c00"),
                ("missing", "缺失", "missing", "#c62828"),
            ),
        ),
        LayerField("last_inspected", FieldKind.DATETIME, "最近巡查", "last inspected"),
    ),
)

BINS = LayerSpec(
    id="bins",
    zh="垃圾箱",
    en="Bins",
    geometry=GeometryKind.POINT,
    code_prefix="B",
    style_field="condition",
    time_fields=("last_inspected",),
    component_class="0301",
    fields=(
        _COMPONENT_CODE,
        _ROAD_CODE,
        LayerField(
            "kind",
            FieldKind.CHOICE,
            "类型",
            "kind",
            required=True,
            choices=_choices(
                ("litter_bin", "果皮箱", "litter bin", "#43a047"),
                ("closed_bin", "封闭式垃圾箱", "closed bin", "#00897b"),
                ("sorting_point", "分类投放点", "sorting point", "#1e88e5"),
                ("collection_point", "垃圾收集点", "collection point", "#5e35b1"),
            ),
        ),
        LayerField(
            "condition",
            FieldKind.CHOICE,
            "状况",
            "condition",
            required=True,
            default="good",
            choices=CONDITION + _choices(("overflowing", "满溢", "overflowing", "#6d4c41")),
        ),
        LayerField("last_inspected", FieldKind.DATETIME, "最近巡查", "last inspected"),
    ),
)

SCHOOLS = LayerSpec(
    id="schools",
    zh="学校",
    en="Schools",
    geometry=GeometryKind.MULTIPOLYGON,
    code_prefix="SCH",
    style_field="school_type",
    fields=(
        LayerField("name", FieldKind.TEXT, "名称", "name", required=True),
        LayerField(
            "school_type",
            FieldKind.CHOICE,
            "学校类型",
            "school type",
            required=True,
            choices=_choices(
                ("kindergarten", "幼儿园", "kindergarten", "#f06292"),
                ("primary", "小学", "primary school", "#1e88e5"),
                ("middle", "初中", "junior secondary school", "#3949ab"),
                ("high", "高中", "senior secondary school", "#5e35b1"),
                ("nine_year", "九年一贯制学校", "nine-year school", "#00897b"),
                ("vocational", "中等职业学校", "vocational school", "#6d4c41"),
                ("special", "特殊教育学校", "special education school", "#546e7a"),
            ),
        ),
        LayerField("address", FieldKind.TEXT, "地址", "address"),
    ),
)

VENUES = LayerSpec(
    id="venues",
    zh="经营场所",
    en="Venues",
    geometry=GeometryKind.POINT,
    code_prefix="V",
    style_field="venue_type",
    time_fields=("opened_on",),
    fields=(
        LayerField("name", FieldKind.TEXT, "名称", "name", required=True),
        LayerField(
            "venue_type",
            FieldKind.CHOICE,
            "场所类型",
            "venue type",
            required=True,
            choices=_choices(
                ("internet_cafe", "网吧", "internet café", "#d32f2f"),
                ("game_hall", "电子游戏厅", "game hall", "#c2185b"),
                ("mahjong_room", "麻将馆", "mahjong room", "#7b1fa2"),
                ("entertainment", "娱乐场所(KTV)", "entertainment / KTV", "#512da8"),
                ("tobacco", "烟草销售点", "tobacco shop", "#5d4037"),
                ("lottery", "彩票销售点", "lottery shop", "#f57c00"),
                ("other", "其他", "other", "#757575"),
            ),
        ),
        LayerField("licence", FieldKind.TEXT, "许可证号", "licence number"),
        LayerField("address", FieldKind.TEXT, "地址", "address"),
        LayerField("opened_on", FieldKind.DATE, "开业日期", "opened on"),
    ),
)

ILLEGAL_BUILDINGS = LayerSpec(
    id="illegal_buildings",
    zh="违法建设",
    en="Illegal buildings",
    geometry=GeometryKind.MULTIPOLYGON,
    code_prefix="WJ",
    style_field="status",
    geodesic_area=True,
    time_fields=("discovered_on", "deadline", "demolished_on", "restored_on"),
    fields=(
        LayerField(
            "status",
            FieldKind.CHOICE,
            "处置状态",
            "status",
            required=True,
            default="reported",
            choices=_choices(
                ("reported", "已上报", "reported", "#e53935"),
                ("verified", "已核实", "verified", "#fb8c00"),
                ("notice_served", "已下达通知", "notice served", "#fdd835"),
                ("demolished", "已拆除", "demolished", "#43a047"),
                ("site_restored", "已复绿/硬化", "site restored", "#1b5e20"),
                ("legalised", "已补办手续", "legalised", "#1e88e5"),
                ("rejected", "不属违建", "rejected", "#9e9e9e"),
            ),
        ),
        LayerField("address", FieldKind.TEXT, "地址", "address"),
        LayerField("owner", FieldKind.TEXT, "当事人", "party responsible"),
        LayerField("discovered_on", FieldKind.DATE, "发现日期", "discovered on"),
        LayerField("deadline", FieldKind.DATE, "整改期限", "deadline"),
        LayerField("demolished_on", FieldKind.DATE, "拆除日期", "demolished on"),
        LayerField("restored_on", FieldKind.DATE, "复绿/硬化日期", "site restored on"),
    ),
)

SIGNAGE = LayerSpec(
    id="signage",
    zh="公益广告与宣传牌",
    en="Public signage",
    geometry=GeometryKind.POINT,
    code_prefix="S",
    style_field="kind",
    time_fields=("installed_on",),
    component_class="0306",
    fields=(
        _COMPONENT_CODE,
        LayerField(
            "kind",
            FieldKind.CHOICE,
            "类型",
            "kind",
            required=True,
            choices=_choices(
                ("core_values", "社会主义核心价值观展板", "core values board", "#c62828"),
                ("civility_ad", "讲文明树新风公益广告", "civility ad", "#ad1457"),
                ("no_smoking", "禁烟标识", "no-smoking sign", "#6a1b9a"),
                ("good_deeds", "善行义举榜", "good-deeds board", "#ef6c00"),
                ("bulletin_board", "宣传栏", "bulletin board", "#1565c0"),
                ("other", "其他", "other", "#757575"),
            ),
        ),
        LayerField("fixed", FieldKind.BOOLEAN, "固定展板", "fixed board", default=True),
        LayerField(
            "condition",
            FieldKind.CHOICE,
            "状况",
            "condition",
            required=True,
            default="good",
            choices=CONDITION,
        ),
        LayerField("installed_on", FieldKind.DATE, "设置日期", "installed on"),
    ),
)

COMPOUNDS = LayerSpec(
    id="compounds",
    zh="小区",
    en="Residential compounds",
    geometry=GeometryKind.MULTIPOLYGON,
    code_prefix="XQ",
    default_color="#8d6e63",
    fields=(
        LayerField("name", FieldKind.TEXT, "名称", "name", required=True),
        LayerField("residential", FieldKind.BOOLEAN, "住宅", "residential", default=True),
        LayerField("households", FieldKind.INTEGER, "户数", "households", minimum=0),
        LayerField("address", FieldKind.TEXT, "地址", "address"),
    ),
)

BUILDINGS = LayerSpec(
    id="buildings",
    zh="楼栋",
    en="Buildings",
    geometry=GeometryKind.MULTIPOLYGON,
    code_prefix="BLD",
    default_color="#a1887f",
    fields=(
        _NAME,
        LayerField(
            "compound_code",
            FieldKind.TEXT,
            "所属小区",
            "compound",
            references=Reference("compounds"),
        ),
        LayerField("residential", FieldKind.BOOLEAN, "住宅", "residential", default=True),
        LayerField("households", FieldKind.INTEGER, "户数", "households", minimum=0),
        LayerField("floors", FieldKind.INTEGER, "层数", "floors", minimum=1, maximum=200),
    ),
)

ENTRANCES = LayerSpec(
    id="entrances",
    zh="出入口",
    en="Entrances",
    geometry=GeometryKind.POINT,
    code_prefix="E",
    style_field="owner_layer",
    fields=(
        LayerField(
            "owner_layer",
            FieldKind.CHOICE,
            "所属类型",
            "belongs to",
            required=True,
            choices=_choices(
                ("schools", "学校", "school", "#1e88e5"),
                ("compounds", "小区", "compound", "#8d6e63"),
                ("buildings", "楼栋", "building", "#a1887f"),
                ("venues", "经营场所", "venue", "#d32f2f"),
            ),
        ),
        # Which table the code points into depends on owner_layer; the
        # importer checks it against that table.
        LayerField("owner_code", FieldKind.TEXT, "所属编码", "owner code", required=True),
        LayerField(
            "kind",
            FieldKind.CHOICE,
            "出入口类型",
            "entrance kind",
            default="main",
            choices=_choices(
                ("main", "正门", "main gate", "#1e88e5"),
                ("side", "侧门", "side gate", "#64b5f6"),
                ("pedestrian", "人行出入口", "pedestrian entrance", "#26a69a"),
                ("vehicle", "车行出入口", "vehicle entrance", "#78909c"),
            ),
        ),
        _NAME,
    ),
)

LAYERS: tuple[LayerSpec, ...] = (
    GRIDS,
    ROADS,
    STREET_LAMPS,
    BINS,
    SCHOOLS,
    VENUES,
    ILLEGAL_BUILDINGS,
    SIGNAGE,
    COMPOUNDS,
    BUILDINGS,
    ENTRANCES,
)
"""All layers, in dependency order (referenced layers before referencing)."""


@dataclass(frozen=True)
class Catalog:
    """Lookup over the declared layers."""

    layers: tuple[LayerSpec, ...] = field(default=LAYERS)

    def __iter__(self) -> Iterator[LayerSpec]:
        return iter(self.layers)

    def ids(self) -> tuple[str, ...]:
        """Layer ids, in dependency order."""
        return tuple(layer.id for layer in self.layers)

    def get(self, layer_id: str) -> LayerSpec:
        """The layer called `layer_id`, or `UnknownLayer`."""
        for layer in self.layers:
            if layer.id == layer_id:
                return layer
        raise UnknownLayer(layer_id, self.ids())


class UnknownLayer(LookupError):
    """A layer id that is not declared."""

    def __init__(self, layer_id: str, known: tuple[str, ...]) -> None:
        super().__init__(f"unknown layer {layer_id!r}; known layers: {', '.join(known)}")
        self.layer_id = layer_id


CATALOG = Catalog()
"""The layers users load and edit."""

SCHOOL_ZONES = LayerSpec(
    id="school_zones",
    zh="学校周边限制区",
    en="School zones",
    geometry=GeometryKind.MULTIPOLYGON,
    code_prefix="SCH",
    style_field="school_type",
    in_grid=False,
    derived_from="schools",
    default_color="#e53935",
    fields=(
        SCHOOLS.field("name"),
        SCHOOLS.field("school_type"),
        LayerField("distance_m", FieldKind.FLOAT, "限制距离(米)", "restricted distance (m)"),
    ),
)
"""The restricted zone around each school: its campus buffered geodesically by the largest
distance the rule profile sets for its school type (kept by triggers, migration 0003)."""

DERIVED: tuple[LayerSpec, ...] = (SCHOOL_ZONES,)

COLLECTIONS = Catalog(LAYERS + DERIVED)
"""Everything the API and the map publish: the layers and the derived layers."""
