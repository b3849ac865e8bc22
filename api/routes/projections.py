"""Projection operations (admin): status of each group, and rebuilds that keep serving."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec
from litestar import Controller, Response, get, post
from psycopg import AsyncConnection

from api.auth import requires
from application.permissions import Permission
from projections.positions import GroupStatus, find_group, group_status, request_rebuild
from projections.registry import projection_groups


class RebuildView(msgspec.Struct, rename="camel", frozen=True):
    """The next version of a group's tables while a rebuild builds it (or after it failed)."""

    state: str
    running: bool
    position: int
    done: int
    total: int
    started_at: datetime | None
    events_per_second: float
    eta_seconds: float | None
    error: str | None


class ProjectionGroupView(msgspec.Struct, rename="camel", frozen=True):
    """A projection group: position, lag, state (a failed group names where and why)."""

    name: str
    schema: str
    projections: list[str]
    position: int
    state: str
    failed_position: int | None
    error: str | None
    lag_events: int
    lag_seconds: float
    updated_at: datetime | None
    rebuild_requested: bool
    rebuild: RebuildView | None


def _view(status: GroupStatus) -> ProjectionGroupView:
    rebuild = status.rebuild
    group = find_group(projection_groups(), status.name)
    return ProjectionGroupView(
        name=status.name,
        schema=status.schema,
        projections=[projection.name for projection in group.projections],
        position=status.position,
        state=status.state,
        failed_position=status.failed_position,
        error=status.error,
        lag_events=status.lag_events,
        lag_seconds=status.lag_seconds,
        updated_at=status.updated_at,
        rebuild_requested=status.rebuild_requested,
        rebuild=None
        if rebuild is None
        else RebuildView(
            state=rebuild.state,
            running=rebuild.running,
            position=rebuild.position,
            done=rebuild.done,
            total=rebuild.total,
            started_at=rebuild.started_at,
            events_per_second=round(rebuild.events_per_second, 1),
            eta_seconds=None if rebuild.eta_seconds is None else round(rebuild.eta_seconds, 1),
            error=rebuild.error,
        ),
    )


class ProjectionController(Controller):
    """Status and rebuilds of projection groups."""

    path = "/projections"
    tags = ["operations"]
    guards = [requires(Permission.PROJECTIONS_ADMIN)]

    @get()
    async def status(self, reader: AsyncConnection[Any]) -> dict[str, list[ProjectionGroupView]]:
        """Every group: position, lag in events and seconds, state, rebuild progress."""
        groups = projection_groups()
        return {"items": [_view(await group_status(reader, group)) for group in groups]}

    @post("/{name:str}/rebuild", status_code=202)
    async def rebuild(
        self, name: str, reader: AsyncConnection[Any]
    ) -> Response[ProjectionGroupView]:
        """Ask the group's worker to rebuild it (a group, or the group of a projection);
        GET /projections shows the progress. An interrupted rebuild resumes."""
        group = find_group(projection_groups(), name)
        await request_rebuild(reader, group)
        return Response(
            _view(await group_status(reader, group)),
            status_code=202,
            headers={"Location": "/api/v1/projections"},
        )
