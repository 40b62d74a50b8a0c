"""Naming the writer of a transaction for the audit triggers, and reading the trail back.

The triggers (migration 0005) record every insert, update, delete and truncate
of a layer, whoever writes it. What they cannot know is *who* asked: the
writer says so with transaction-local settings, which end with the
transaction, so a pooled connection never carries one request's name into
the next. HTTP writes must call `audit_context` (it takes a Principal, so an
anonymous write cannot be named); the CLI calls `audit_source`; SQL typed by
hand is recorded as source 'database' with no actor.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel
from sqlalchemy import Connection, func, select, text

from gis_api.auth.principal import Principal
from layers.tables import METADATA

AUDIT_LOG = METADATA.tables["audit_log"]
MAX_SOURCE = 300

_SET = text(
    "SELECT set_config('civic_gis.actor_id', :actor_id, true), "
    "set_config('civic_gis.actor', :actor, true), "
    "set_config('civic_gis.source', :source, true)"
)


def _set(conn: Connection, actor_id: str, actor: str, source: str) -> None:
    source = source.strip()[:MAX_SOURCE]
    if not source:
        raise ValueError("an audited write needs a source (request id, upload id, cli ...)")
    conn.execute(_SET, {"actor_id": actor_id, "actor": actor, "source": source})


def audit_context(conn: Connection, principal: Principal, source: str) -> None:
    """Record `principal` and `source` on every layer write for the rest of this transaction.

    Call it inside the transaction (after `engine.begin()`), before the first write.
    """
    _set(conn, str(principal.user_id), principal.name, source)


def audit_source(conn: Connection, source: str) -> None:
    """Record `source` (e.g. 'cli:import bins.gpkg'), no user, for the rest of the transaction."""
    _set(conn, "", "", source)


class AuditEntry(BaseModel):
    """One recorded change of one feature (or a whole layer, for a truncate)."""

    id: int
    at: datetime
    actor: str | None
    actor_id: int | None
    source: str
    layer: str
    row_id: int | None
    action: Literal["insert", "update", "delete", "truncate"]
    old: dict[str, Any] | None
    new: dict[str, Any] | None


def _entries(conn: Connection, query: Any) -> list[AuditEntry]:
    return [
        AuditEntry(
            id=r.id,
            at=r.at,
            actor=r.actor_name,
            actor_id=r.actor_id,
            source=r.source,
            layer=r.layer,
            row_id=r.row_id,
            action=r.action,
            old=r.old,
            new=r.new,
        )
        for r in conn.execute(query)
    ]


def feature_history(conn: Connection, layer: str, row_id: int) -> list[AuditEntry]:
    """The changes of one feature, newest first.

    Only since the layer's last truncate: ids restart after one, so an older
    entry with the same id is about another feature.
    """
    truncated = (
        select(func.coalesce(func.max(AUDIT_LOG.c.id), 0))
        .where(AUDIT_LOG.c.layer == layer, AUDIT_LOG.c.action == "truncate")
        .scalar_subquery()
    )
    query = (
        select(AUDIT_LOG)
        .where(
            AUDIT_LOG.c.layer == layer,
            AUDIT_LOG.c.row_id == row_id,
            AUDIT_LOG.c.id > truncated,
        )
        .order_by(AUDIT_LOG.c.id.desc())
    )
    return _entries(conn, query)


def changes_since(
    conn: Connection, since: datetime, layer: str | None = None, limit: int | None = None
) -> list[AuditEntry]:
    """Every recorded change at or after `since` (optionally of one layer), oldest first."""
    query = select(AUDIT_LOG).where(AUDIT_LOG.c.at >= since)
    if layer is not None:
        query = query.where(AUDIT_LOG.c.layer == layer)
    query = query.order_by(AUDIT_LOG.c.id)
    if limit is not None:
        query = query.limit(limit)
    return _entries(conn, query)
