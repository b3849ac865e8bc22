"""Auditors' view of the event store: streams, the global log, and state as of a version or time."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast
from uuid import UUID

import msgspec
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import StoredEvent

from application.recorder import XidOrderedRecorder, page_below_horizon
from application.store import EventStore
from domain.errors import InvalidValue, NotFound

_COLUMNS = "notification_id, originator_id, originator_version, topic, state, metadata"


class AuditEvent(msgspec.Struct, rename="camel", frozen=True):
    """One stored event as auditors see it."""

    position: int
    stream_id: UUID
    version: int
    type: str
    timestamp: datetime
    actor: str
    correlation_id: str
    causation_id: str
    data: dict[str, Any]


def require_timezone(name: str, value: datetime | None) -> None:
    """Refuse a time without a timezone: API timestamps are ISO 8601 with one (API.md),
    and guessing (server zone? UTC?) would silently shift what an auditor sees."""
    if value is not None and value.tzinfo is None:
        raise InvalidValue(name, "must include a timezone, e.g. 2024-01-01T00:00:00Z")


@dataclass(frozen=True)
class LogFilter:
    """Which events of the global log to list (times must include a timezone)."""

    after: int = 0
    limit: int = 100
    type: str | None = None
    actor: str | None = None
    start: datetime | None = None
    end: datetime | None = None


def _event_type(topic: str) -> str:
    return topic.rpartition(":")[2]


def _audit_event(store: EventStore, row: dict[str, Any]) -> AuditEvent:
    stored = StoredEvent(
        originator_id=row["originator_id"],
        originator_version=row["originator_version"],
        topic=row["topic"],
        state=bytes(row["state"]),
    )
    event = store.app.mapper.to_domain_event(stored)
    fields = {
        k: v
        for k, v in vars(event).items()
        if k not in ("originator_id", "originator_version", "timestamp", "originator_topic")
    }
    metadata = row["metadata"]
    return AuditEvent(
        position=row["notification_id"],
        stream_id=row["originator_id"],
        version=row["originator_version"],
        type=_event_type(row["topic"]),
        timestamp=cast(datetime, getattr(event, "timestamp")),  # noqa: B009
        actor=str(metadata.get("actor", "")),
        correlation_id=str(metadata.get("correlationId", "")),
        causation_id=str(metadata.get("causationId", "")),
        data=msgspec.to_builtins(fields),
    )


def _rows(store: EventStore, sql: str, params: list[Any]) -> list[dict[str, Any]]:
    recorder = store.app.recorder
    assert isinstance(recorder, XidOrderedRecorder)
    with recorder.datastore.get_connection() as connection, connection.cursor() as cursor:
        cursor.execute(sql, params)
        return list(cursor.fetchall())


def stream_events(store: EventStore, stream_id: UUID) -> list[AuditEvent]:
    """Every event of one aggregate, in version order."""
    rows = _rows(
        store,
        f"SELECT {_COLUMNS} FROM public.pms_events WHERE originator_id = %s"
        " ORDER BY originator_version",
        [stream_id],
    )
    if not rows:
        raise NotFound(f"stream {stream_id} not found")
    return [_audit_event(store, row) for row in rows]


def global_log(store: EventStore, where: LogFilter) -> tuple[list[AuditEvent], int | None]:
    """Events after a position, filtered; and the position to continue after (None at the end)."""
    if not 1 <= where.limit <= 1000:
        raise InvalidValue("limit", "must be between 1 and 1000")
    require_timezone("from", where.start)
    require_timezone("to", where.end)
    found: list[AuditEvent] = []
    after = where.after
    clauses = ["notification_id > %s"]
    extra: list[Any] = []
    if where.type:
        # What follows the topic's last ":" (as _event_type reads it), compared as it is.
        clauses.append("substring(topic from '[^:]*$') = %s")
        extra.append(where.type)
    if where.actor:
        clauses.append("metadata->>'actor' = %s")
        extra.append(where.actor)
    sql = page_below_horizon(_COLUMNS, "public.pms_events", " AND ".join(clauses))
    # Time bounds live inside the events, so pages are filtered after decoding.
    while len(found) < where.limit:
        page = _rows(store, sql, [after, *extra, where.limit])
        for row in page:
            event = _audit_event(store, row)
            after = event.position
            if (where.start is None or event.timestamp >= where.start) and (
                where.end is None or event.timestamp < where.end
            ):
                found.append(event)
                if len(found) == where.limit:
                    return found, after
        if len(page) < where.limit:
            return found, None
    return found, after


def iter_log(store: EventStore, after: int = 0, until: int | None = None) -> Iterator[AuditEvent]:
    """The whole log (or a range of it), page by page, for exports."""
    while True:
        events, _ = global_log(store, LogFilter(after=after, limit=1000))
        for event in events:
            if until is not None and event.position > until:
                return
            yield event
        if len(events) < 1000:
            return
        after = events[-1].position


def state_as_of(
    store: EventStore, stream_id: UUID, *, version: int | None, at: datetime | None
) -> dict[str, Any]:
    """The aggregate rebuilt as it was at a version, or at the last version at or before `at`
    (a time with a timezone)."""
    if (version is None) == (at is None):
        raise InvalidValue("version", "give exactly one of version or at")
    require_timezone("at", at)
    events = stream_events(store, stream_id)
    if at is not None:
        earlier = [e.version for e in events if e.timestamp <= at]
        if not earlier:
            raise NotFound(f"stream {stream_id} did not exist at {at.isoformat()}")
        version = earlier[-1]
    assert version is not None
    if not 1 <= version <= events[-1].version:
        raise NotFound(f"stream {stream_id} has no version {version}")
    aggregate = cast(Aggregate, store.app.repository.get(stream_id, version=version))
    state = {k.lstrip("_"): v for k, v in vars(aggregate).items() if k != "_pending_events"}
    return {
        "streamId": str(stream_id),
        "type": type(aggregate).__name__,
        "version": aggregate.version,
        "state": msgspec.to_builtins(state),
    }
