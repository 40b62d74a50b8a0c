"""SQLAlchemy tables derived from the layer catalog.

Every layer table has the same skeleton (stable id, human code, free JSONB
properties, timestamps, a version for optimistic locking, the grid it lies
in) plus its declared fields and a geometry in EPSG:4326 with a generated,
GiST-indexed geography twin.  Distance rules join on the geography column so
that `ST_DWithin(a.geog, b.geog, metres)` is both geodesic and index-assisted
(a cast inside the join predicate defeats the index: 346 s vs 0.19 s, TRAPS.md).
"""

from __future__ import annotations

from typing import Any

from geoalchemy2 import Geography, Geometry
from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Computed,
    Date,
    DateTime,
    Double,
    ForeignKey,
    Identity,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Table,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.types import TypeEngine

from layers.catalog import COLLECTIONS, Catalog, FieldKind, LayerField, LayerSpec

SRID = 4326

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_name)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s",
    "pk": "pk_%(table_name)s",
}

_SQL_TYPES: dict[FieldKind, type[TypeEngine[Any]]] = {
    FieldKind.TEXT: Text,
    FieldKind.CHOICE: Text,
    FieldKind.INTEGER: Integer,
    FieldKind.FLOAT: Double,
    FieldKind.BOOLEAN: Boolean,
    FieldKind.DATE: Date,
    FieldKind.DATETIME: DateTime,
}


def _sql_literal(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


def _field_column(field: LayerField) -> Column[Any]:
    sql_type = _SQL_TYPES[field.kind]
    type_ = DateTime(timezone=True) if field.kind is FieldKind.DATETIME else sql_type()
    fk = []
    if field.references is not None:
        # Codes are what users import and read; ON UPDATE CASCADE keeps the
        # links when a code is corrected.
        fk.append(
            ForeignKey(
                f"{field.references.layer}.code",
                onupdate="CASCADE",
                ondelete=field.references.on_delete,
                deferrable=True,
                initially="DEFERRED",
            )
        )
    server_default = None if field.default is None else text(_sql_literal(field.default))
    return Column(
        field.name,
        type_,
        *fk,
        nullable=not (field.required or field.default is not None),
        server_default=server_default,
        comment=f"{field.zh} / {field.en}",
    )


def _field_checks(layer: LayerSpec, field: LayerField) -> list[CheckConstraint]:
    checks: list[CheckConstraint] = []
    if field.choices:
        allowed = ", ".join(_sql_literal(k) for k in field.choice_keys())
        checks.append(CheckConstraint(f"{field.name} IN ({allowed})", name=f"{field.name}_choice"))
    if field.pattern:
        checks.append(
            CheckConstraint(
                f"{field.name} ~ {_sql_literal(field.pattern)}", name=f"{field.name}_pattern"
            )
        )
    if field.minimum is not None:
        checks.append(
            CheckConstraint(f"{field.name} >= {field.minimum!r}", name=f"{field.name}_min")
        )
    if field.maximum is not None:
        checks.append(
            CheckConstraint(f"{field.name} <= {field.maximum!r}", name=f"{field.name}_max")
        )
    return checks


def layer_table(layer: LayerSpec, metadata: MetaData) -> Table:
    """Build the table of one layer on `metadata`."""
    geom_type = layer.geometry.value
    columns: list[Any] = [
        Column("id", BigInteger, Identity(always=False), primary_key=True),
        Column("code", Text, nullable=False, unique=True, comment="编码 / code"),
        *(_field_column(f) for f in layer.fields),
        Column("properties", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=text("now()")),
        Column("updated_at", DateTime(timezone=True), nullable=False, server_default=text("now()")),
        Column("version", Integer, nullable=False, server_default=text("1")),
    ]
    if layer.in_grid:
        columns.append(
            Column(
                "grid_id",
                BigInteger,
                ForeignKey("grids.id", ondelete="SET NULL"),
                nullable=True,
                index=True,
                comment="所在网格 / grid (kept by trigger)",
            )
        )
    columns += [
        Column(
            "geom",
            Geometry(geom_type, srid=SRID, spatial_index=False, nullable=False),
            nullable=False,
        ),
        Column(
            "geog",
            Geography(geom_type, srid=SRID, spatial_index=False),
            Computed("(geom)::geography", persisted=True),
        ),
    ]
    if layer.geodesic_area:
        columns.append(
            Column(
                "area_m2",
                Double,
                Computed("ST_Area((geom)::geography, true)", persisted=True),
                comment="面积(平方米, 椭球面) / geodesic area m²",
            )
        )
    checks = [c for f in layer.fields for c in _field_checks(layer, f)]
    checks.append(CheckConstraint("ST_IsValid(geom)", name="geom_valid"))
    checks.append(CheckConstraint("code <> ''", name="code_not_empty"))
    if layer.code_pattern:
        checks.append(
            CheckConstraint(f"code ~ {_sql_literal(layer.code_pattern)}", name="code_pattern")
        )
    table = Table(layer.table, metadata, *columns, *checks, comment=f"{layer.zh} / {layer.en}")
    Index(f"ix_{layer.table}_geom", table.c.geom, postgresql_using="gist")
    Index(f"ix_{layer.table}_geog", table.c.geog, postgresql_using="gist")
    if layer.table == "grids":
        # Placing a point in its grid cell (uploads, grid rights, the grid triggers) probes
        # only cells: the full index also holds the streets', communities' and district's
        # large boxes (migration 0011).
        Index(
            "ix_grids_cell_geom",
            table.c.geom,
            postgresql_using="gist",
            postgresql_where=text("level = 'grid'"),
        )
    return table


def build_metadata(catalog: Catalog = COLLECTIONS) -> MetaData:
    """All layer tables (and the support tables) on a fresh MetaData."""
    metadata = MetaData(naming_convention=NAMING)
    for layer in catalog:
        layer_table(layer, metadata)
    Table(
        "school_zone_distances",
        metadata,
        Column("school_type", Text, primary_key=True),
        Column("distance_m", Double, nullable=False),
        CheckConstraint("distance_m > 0", name="distance_positive"),
        comment="学校限制距离(来自规则配置) / zone distance per school type, from the profile",
    )
    access_tables(metadata)
    field_tables(metadata)
    near_tables(metadata)
    along_road_tables(metadata)
    return metadata


# --- near pairs kept for the checks (issue 4, migration 0007) ---------------------------


def near_tables(metadata: MetaData) -> None:
    """Which points stand near which shapes, kept by triggers (layers.checks.near)."""
    Table(
        "near_relations",
        metadata,
        Column("relation", Text, primary_key=True),
        Column("a_table", Text, nullable=False, comment="the points"),
        Column("b_table", Text, nullable=False),
        Column(
            "reach_m",
            Double,
            nullable=False,
            comment="pairs kept up to this geodesic distance (m); 0: the point is inside",
        ),
        CheckConstraint("reach_m >= 0", name="reach_not_negative"),
        comment="检查用的近邻关系 / relations whose near pairs the database keeps for the checks",
    )
    pairs = Table(
        "near_pairs",
        metadata,
        Column("relation", Text, ForeignKey("near_relations.relation"), primary_key=True),
        Column("a_id", BigInteger, primary_key=True),
        Column("b_id", BigInteger, primary_key=True),
        Column("distance_m", Double, nullable=False, comment="geodesic (m)"),
        comment="近邻对, 由触发器维护 / near pairs, kept by triggers",
    )
    Index("ix_near_pairs_b", pairs.c.relation, pairs.c.b_id)


# --- positions along roads for the spacing checks (issue 4, migration 0008) -------------

ALONG_ROADS: dict[str, tuple[str, ...]] = {
    "street_lamps": ("placement", "status", "pole_height_m", "light_distribution"),
    "bins": ("kind", "condition"),
}
"""Asset tables whose position along their named road is kept, with the copied columns."""


def along_road_tables(metadata: MetaData) -> None:
    """`<layer>_on_roads`: each asset's road and fraction along it (layers.checks.spacing)."""
    for layer, copied in ALONG_ROADS.items():
        asset = metadata.tables[layer]
        Table(
            f"{layer}_on_roads",
            metadata,
            Column("id", BigInteger, primary_key=True, comment=f"{layer}.id"),
            Column("road_id", BigInteger, nullable=False, index=True, comment="roads.id"),
            Column("f", Double, nullable=False, comment="fraction of the road's length"),
            *(Column(name, asset.c[name].type, nullable=True) for name in copied),
            comment="沿道路位置, 由触发器维护 / position along the named road, kept by triggers",
        )
        Index(f"ix_{layer}_road_code", asset.c.road_code)
    Table(
        "lamp_stretches",
        metadata,
        Column("road_id", BigInteger, nullable=False, index=True, comment="roads.id"),
        Column("from_id", BigInteger, nullable=True, comment="lamp; NULL: road start"),
        Column("to_id", BigInteger, nullable=True, comment="lamp; NULL: road end"),
        Column("f1", Double, nullable=False),
        Column("f2", Double, nullable=False),
        Column("from_pole_height_m", Double, nullable=True),
        Column("from_light_distribution", Text, nullable=True),
        Column("to_pole_height_m", Double, nullable=True),
        Column("to_light_distribution", Text, nullable=True),
        comment="相邻路灯间路段, 由触发器维护 / stretches between consecutive lamps, kept by "
        "triggers",
    )


# --- users, tokens and the audit trail (issue 7, migration 0005) ------------------------

ROLES = ("inspector", "planner", "leader", "admin")
AUDIT_ACTIONS = ("insert", "update", "delete", "truncate")


def access_tables(metadata: MetaData) -> None:
    """Users, their grids, API tokens and the audit log on `metadata`.

    Grid codes are text, not a foreign key: reloading the grids layer (TRUNCATE
    ... CASCADE) must not silently strip inspectors of their grids.  Audit rows
    keep the actor's name besides the id, so they still read right after a
    user is renamed or removed.
    """
    roles = ", ".join(_sql_literal(r) for r in ROLES)
    Table(
        "users",
        metadata,
        Column("id", BigInteger, Identity(always=False), primary_key=True),
        Column("name", Text, nullable=False, unique=True),
        Column("role", Text, nullable=False),
        Column("disabled", Boolean, nullable=False, server_default=text("false")),
        Column("password_hash", Text, nullable=True, comment="argon2id; NULL: token only"),
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=text("now()")),
        CheckConstraint(f"role IN ({roles})", name="role_choice"),
        CheckConstraint("name <> ''", name="name_not_empty"),
        comment="用户 / users",
    )
    Table(
        "user_grids",
        metadata,
        Column(
            "user_id",
            BigInteger,
            ForeignKey("users.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        Column("grid_code", Text, primary_key=True),
        comment="巡查员负责的网格 / the grids an inspector may change",
    )
    Table(
        "api_tokens",
        metadata,
        Column("id", BigInteger, Identity(always=False), primary_key=True),
        Column(
            "user_id",
            BigInteger,
            ForeignKey("users.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        Column("lookup", Text, nullable=False, unique=True, comment="public part of the token"),
        Column("secret_hash", Text, nullable=False, comment="argon2id of the secret part"),
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=text("now()")),
        Column("revoked_at", DateTime(timezone=True), nullable=True),
        comment="API令牌(仅存哈希) / API tokens, hashed",
    )
    actions = ", ".join(_sql_literal(a) for a in AUDIT_ACTIONS)
    audit = Table(
        "audit_log",
        metadata,
        Column("id", BigInteger, Identity(always=False), primary_key=True),
        Column("at", DateTime(timezone=True), nullable=False, server_default=text("now()")),
        Column("actor_id", BigInteger, ForeignKey("users.id", ondelete="SET NULL"), nullable=True),
        Column("actor_name", Text, nullable=True),
        Column("source", Text, nullable=False, comment="request, upload, cli or database"),
        Column("layer", Text, nullable=False),
        Column("row_id", BigInteger, nullable=True),
        Column("action", Text, nullable=False),
        Column("old", JSONB, nullable=True),
        Column("new", JSONB, nullable=True),
        CheckConstraint(f"action IN ({actions})", name="action_choice"),
        comment="变更档案 / audit trail of every layer write (kept by triggers)",
    )
    Index("ix_audit_log_layer_row", audit.c.layer, audit.c.row_id, audit.c.id)
    Index("ix_audit_log_at", audit.c.at)


# --- field uploads (issue 5, migration 0006) ---------------------------------------------

UPLOAD_STATUSES = ("stored", "partial")
SNAP_STATUSES = (
    "matched",
    "ambiguous",
    "too_inaccurate",
    "no_asset",
    "not_an_asset_kind",
    "created",
)


def field_tables(metadata: MetaData) -> None:
    """Uploads, their points, tracks and photos on `metadata`.

    No foreign key leaves these tables: users, grids and layers are truncated and reloaded
    (tests, demo --replace), which must neither fail nor cascade into the field archive. The
    uploader's name is kept beside the id for the same reason as in the audit log. Changes a
    point makes to a layer are not stored here but in `audit_log` (source 'upload:<id> ...'),
    the one record of who changed what.
    """
    statuses = ", ".join(_sql_literal(s) for s in UPLOAD_STATUSES)
    Table(
        "uploads",
        metadata,
        Column("id", BigInteger, Identity(always=False), primary_key=True),
        Column("sha256", Text, nullable=False, unique=True, comment="hex digest of the file"),
        Column("idempotency_key", Text, nullable=True, unique=True),
        Column("uploader_id", BigInteger, nullable=True),
        Column("uploader_name", Text, nullable=True),
        Column("source", Text, nullable=False, comment="http or cli"),
        Column("filename", Text, nullable=True),
        Column("format", Text, nullable=False),
        Column("declared_crs", Text, nullable=True),
        Column("note", Text, nullable=True),
        Column("kind_hint", Text, nullable=True),
        Column("layer_hint", Text, nullable=True),
        Column("bytes", BigInteger, nullable=False),
        Column("status", Text, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=text("now()")),
        Column("report", JSONB, nullable=False),
        CheckConstraint(f"status IN ({statuses})", name="status_choice"),
        comment="外业上传 / field uploads, one row per distinct file",
    )
    Table(
        "field_photos",
        metadata,
        Column("id", BigInteger, Identity(always=False), primary_key=True),
        Column(
            "upload_id",
            BigInteger,
            ForeignKey("uploads.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        Column("sha256", Text, nullable=False),
        Column("content", LargeBinary, nullable=False, comment="JPEG, personal metadata removed"),
        comment="现场照片 / photo evidence (cleaned copy)",
    )
    snaps = ", ".join(_sql_literal(s) for s in SNAP_STATUSES)
    # upload_id and photo_id are checked by statement triggers, not foreign keys (0009).
    points = Table(
        "field_points",
        metadata,
        Column("id", BigInteger, Identity(always=False), primary_key=True),
        Column("upload_id", BigInteger, nullable=False, index=True),
        Column("row", Integer, nullable=False, comment="element/row/line in the file"),
        Column("orig_x", Double, nullable=False),
        Column("orig_y", Double, nullable=False),
        Column("crs", Text, nullable=False),
        Column("observed_at", DateTime(timezone=True), nullable=True),
        Column("elevation_m", Double, nullable=True),
        Column("accuracy_m", Double, nullable=True),
        Column("hdop", Double, nullable=True),
        Column("pdop", Double, nullable=True),
        Column("vdop", Double, nullable=True),
        Column("satellites", Integer, nullable=True),
        Column("device", Text, nullable=True),
        Column("kind", Text, nullable=True),
        Column("name", Text, nullable=True),
        Column("description", Text, nullable=True),
        Column("properties", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
        Column("photo_id", BigInteger, nullable=True),
        Column("grid_id", BigInteger, nullable=True, comment="grid holding the point"),
        Column(
            "observation", Text, nullable=True, comment="canonical kind, e.g. street_lamps:unlit"
        ),
        Column("snap", Text, nullable=False),
        Column("snap_reason", Text, nullable=True),
        Column("matched_layer", Text, nullable=True),
        Column("matched_id", BigInteger, nullable=True),
        Column("matched_code", Text, nullable=True),
        Column("match_distance_m", Double, nullable=True),
        Column(
            "geom",
            Geometry("POINT", srid=SRID, spatial_index=False, nullable=False),
            nullable=False,
        ),
        CheckConstraint(f"snap IN ({snaps})", name="snap_choice"),
        comment="外业点位 / field observations",
    )
    Index("ix_field_points_observed_at", points.c.observed_at)
    photo = points.c.photo_id
    Index("ix_field_points_photo_id", photo, postgresql_where=photo.isnot(None))
    tracks = Table(
        "field_tracks",
        metadata,
        Column("id", BigInteger, Identity(always=False), primary_key=True),
        Column(
            "upload_id",
            BigInteger,
            ForeignKey("uploads.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        Column("row", Integer, nullable=False),
        Column("kind", Text, nullable=False, comment="track (walked), route (planned), line"),
        Column("name", Text, nullable=True),
        Column("vertices", Integer, nullable=False),
        Column("started_at", DateTime(timezone=True), nullable=True),
        Column("ended_at", DateTime(timezone=True), nullable=True),
        Column("properties", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
        Column(
            "geom",
            Geometry("LINESTRING", srid=SRID, spatial_index=False, nullable=False),
            nullable=False,
        ),
        Column(
            "geog",
            Geography("LINESTRING", srid=SRID, spatial_index=False),
            Computed("(geom)::geography", persisted=True),
        ),
        comment="外业轨迹 / field tracks (patrol coverage)",
    )
    Index("ix_field_tracks_geog", tracks.c.geog, postgresql_using="gist")
    Index("ix_field_tracks_started_at", tracks.c.started_at)


METADATA = build_metadata()
"""The schema as declared; alembic migrations must match it (tested)."""


def table_of(layer: LayerSpec) -> Table:
    """The SQLAlchemy table of a declared layer."""
    return METADATA.tables[layer.table]
