"""Audit routes: history of a stream, state as of a version or time, the log, verification."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from litestar import Controller, get
from litestar.datastructures import State
from litestar.exceptions import ServiceUnavailableException
from litestar.params import Parameter

from api.auth import requires
from api.dependencies import services
from api.ws_hub import publish_alert
from application.audit import verify
from application.history import AuditEvent, LogFilter, global_log, state_as_of, stream_events
from application.permissions import Permission
from application.store import EventStore


class AuditController(Controller):
    """Read-only history for auditors, straight from the event store."""

    path = "/audit"
    tags = ["audit"]
    guards = [requires(Permission.AUDIT_READ)]

    @get("/streams/{stream_id:uuid}/events", sync_to_thread=True)
    def events(self, stream_id: UUID, store: EventStore) -> dict[str, list[AuditEvent]]:
        """Every event of one aggregate, in order, with who and why."""
        return {"items": stream_events(store, stream_id)}

    @get("/streams/{stream_id:uuid}/state", sync_to_thread=True)
    def state(
        self,
        stream_id: UUID,
        store: EventStore,
        version: int | None = None,
        at: datetime | None = None,
    ) -> dict[str, Any]:
        """The aggregate as it was at `?version=N` or `?at=<timestamp>`."""
        return state_as_of(store, stream_id, version=version, at=at)

    @get("/events", sync_to_thread=True)
    def log(
        self,
        store: EventStore,
        after: int = 0,
        limit: int = 100,
        event_type: Annotated[str | None, Parameter(query="type")] = None,
        actor: str | None = None,
        start: Annotated[datetime | None, Parameter(query="from")] = None,
        end: Annotated[datetime | None, Parameter(query="to")] = None,
    ) -> dict[str, Any]:
        """The global log after a position; `nextAfter` continues it."""
        where = LogFilter(
            after=after, limit=limit, type=event_type, actor=actor, start=start, end=end
        )
        items, next_after = global_log(store, where)
        return {"items": items, "nextAfter": next_after}

    @get("/verify")
    async def verify(self, state: State) -> dict[str, Any]:
        """Check every hash chain and seal: `{ok, checkedEvents, firstBadPosition?, detail?}`."""
        found = services(state)
        settings = found.settings
        if not settings.audit_key:
            raise ServiceUnavailableException("PMS_AUDIT_KEY is not configured")
        result = await asyncio.to_thread(verify, settings.database_url, settings.audit_key.encode())
        body: dict[str, Any] = {
            "ok": result.ok,
            "checkedEvents": result.checked_events,
            "sealedEvents": result.sealed_events,
        }
        if result.first_bad is not None:
            body["firstBadPosition"] = result.first_bad.position
            body["streamId"] = result.first_bad.stream_id or None
            body["detail"] = result.first_bad.detail
            await publish_alert(
                found.nats,
                "tamper_detected",
                f"audit verification failed at position {result.first_bad.position}",
                position=await asyncio.to_thread(found.store.max_position),
                firstBadPosition=result.first_bad.position,
                streamId=result.first_bad.stream_id or None,
            )
        return body
