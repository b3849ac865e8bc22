"""How far each projection group has applied the event store, and how its rebuild is going."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from psycopg import AsyncConnection, sql

from domain.errors import Conflict, NotFound
from projections.base import ProjectionGroup
from projections.registry import projection_groups
from projections.schemas import next_schema

REBUILD_LOCK = 724011
"""Advisory lock class (with hashtext(group)) held by whoever is rebuilding that group."""

LAG_COUNT_LIMIT = 100_000
"""Lag in events is counted up to this many (a count is a scan; status and /metrics say
100000 for "at least that many")."""


class RebuildInProgress(Conflict):
    """The group is being rebuilt already."""

    code = "rebuild-in-progress"


@dataclass(frozen=True)
class RebuildProgress:
    """The next version of a group's tables, while a rebuild builds it (or after it failed)."""

    state: str  # "rebuilding" or "failed"
    running: bool  # someone holds the rebuild lock now
    position: int
    done: int  # events applied so far
    total: int  # events in the store when it started
    started_at: datetime | None
    error: str | None

    @property
    def events_per_second(self) -> float:
        """Average speed since the rebuild (or its resumption) started."""
        if self.started_at is None:
            return 0.0
        elapsed = (datetime.now(UTC) - self.started_at).total_seconds()
        return self.done / elapsed if elapsed > 0 else 0.0

    @property
    def eta_seconds(self) -> float | None:
        """Seconds left at the average speed (None before any progress)."""
        rate = self.events_per_second
        return max(self.total - self.done, 0) / rate if rate else None


@dataclass(frozen=True)
class GroupStatus:
    """Where a projection group is, how far behind the store, and whether it stopped."""

    name: str
    schema: str
    position: int
    state: str  # "running", "failed", or "new" before its projector first started
    failed_position: int | None
    error: str | None
    lag_events: int
    lag_seconds: float
    updated_at: datetime | None
    rebuild_requested: bool
    rebuild: RebuildProgress | None


def find_group(groups: tuple[ProjectionGroup, ...], name: str) -> ProjectionGroup:
    """The group called `name`, or the group holding the projection called `name`."""
    for group in groups:
        if group.name == name or any(p.name == name for p in group.projections):
            return group
    known = ", ".join(group.name for group in groups)
    raise NotFound(f"no projection or projection group {name!r} (groups: {known})")


async def _row(
    connection: AsyncConnection[Any], schema: str, group: str, columns: str
) -> tuple[Any, ...] | None:
    """A group's row of `schema`.projection_positions, or None (also when there is no table)."""
    cursor = await connection.execute(
        "SELECT to_regclass(%s)",
        (f"{sql.Identifier(schema).as_string(None)}.projection_positions",),
    )
    found = await cursor.fetchone()
    if found is None or found[0] is None:
        return None
    cursor = await connection.execute(
        sql.SQL("SELECT {} FROM {}.projection_positions WHERE group_name = %s").format(
            sql.SQL(columns), sql.Identifier(schema)
        ),
        (group,),
    )
    return await cursor.fetchone()


async def group_position(connection: AsyncConnection[Any], group: ProjectionGroup) -> int:
    """The position a group's live tables have applied (0 before it started)."""
    cursor = await connection.execute(
        sql.SQL("SELECT position FROM {}.projection_positions WHERE group_name = %s").format(
            sql.Identifier(group.schema)
        ),
        (group.name,),
    )
    row = await cursor.fetchone()
    return int(row[0]) if row else 0


async def lowest_position(connection: AsyncConnection[Any], groups: tuple[str, ...]) -> int:
    """The smallest applied position among the groups named `groups` (0 if any has not started)."""
    chosen = [group for group in projection_groups() if group.name in groups]
    return min([await group_position(connection, group) for group in chosen], default=0)


async def rebuild_running(connection: AsyncConnection[Any], group: ProjectionGroup) -> bool:
    """Whether some session holds the group's rebuild lock."""
    cursor = await connection.execute(
        "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted"
        " AND classid = %s::oid AND objid = hashtext(%s)::oid AND objsubid = 2"
        " AND database = (SELECT oid FROM pg_database WHERE datname = current_database()))",
        (REBUILD_LOCK, group.name),
    )
    row = await cursor.fetchone()
    return bool(row and row[0])


async def _lag(connection: AsyncConnection[Any], position: int) -> tuple[int, float]:
    """Events after `position`, and how long ago the oldest of them happened."""
    cursor = await connection.execute(
        "SELECT (SELECT count(*) FROM (SELECT 1 FROM public.pms_events"
        "  WHERE notification_id > %s LIMIT %s) behind),"
        " (SELECT convert_from(state, 'UTF8')::jsonb #>> '{timestamp,_data_}'"
        "  FROM public.pms_events WHERE notification_id > %s ORDER BY notification_id LIMIT 1)",
        (position, LAG_COUNT_LIMIT, position),
    )
    row = await cursor.fetchone()
    if row is None or not row[0]:
        return 0, 0.0
    try:
        oldest = datetime.fromisoformat(str(row[1]))
    except ValueError:
        return int(row[0]), 0.0
    return int(row[0]), max((datetime.now(UTC) - oldest).total_seconds(), 0.0)


async def _rebuild(
    connection: AsyncConnection[Any], group: ProjectionGroup
) -> RebuildProgress | None:
    row = await _row(
        connection,
        next_schema(group),
        group.name,
        "state, position, rebuild_done, rebuild_total, rebuild_started_at, error",
    )
    if row is None:
        return None
    state, position, done, total, started_at, error = row
    return RebuildProgress(
        state=str(state),
        running=await rebuild_running(connection, group),
        position=int(position),
        done=int(done or 0),
        total=int(total or 0),
        started_at=started_at,
        error=error,
    )


async def group_status(connection: AsyncConnection[Any], group: ProjectionGroup) -> GroupStatus:
    """The status of one group: position, lag, failure, rebuild."""
    row = await _row(
        connection,
        group.schema,
        group.name,
        "position, state, failed_position, error, updated_at, rebuild_requested_at",
    )
    position, state, failed_position, error, updated_at, requested = row or (
        0,
        "new",
        None,
        None,
        None,
        None,
    )
    lag_events, lag_seconds = await _lag(connection, int(position))
    return GroupStatus(
        name=group.name,
        schema=group.schema,
        position=int(position),
        state=str(state),
        failed_position=failed_position,
        error=error,
        lag_events=lag_events,
        lag_seconds=round(lag_seconds, 3),
        updated_at=updated_at,
        rebuild_requested=requested is not None,
        rebuild=await _rebuild(connection, group),
    )


async def request_rebuild(connection: AsyncConnection[Any], group: ProjectionGroup) -> None:
    """Ask the group's projector worker to rebuild it (or resume an interrupted rebuild)."""
    if await rebuild_running(connection, group):
        raise RebuildInProgress(f"projection group {group.name} is being rebuilt already")
    await connection.execute(
        sql.SQL(
            "INSERT INTO {}.projection_positions (group_name, rebuild_requested_at)"
            " VALUES (%s, now()) ON CONFLICT (group_name)"
            " DO UPDATE SET rebuild_requested_at = now()"
        ).format(sql.Identifier(group.schema)),
        (group.name,),
    )


@asynccontextmanager
async def consistent_read(connection: AsyncConnection[Any]) -> AsyncIterator[int]:
    """A read-only snapshot of every group's tables, and the position they are all at.

    The position tables are locked before the snapshot is taken (LOCK takes none): a
    rebuild's switch waits for snapshots in progress, and one that waited for the switch
    sees the new tables complete, never the old position beside them.
    """
    async with connection.transaction():
        await connection.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        groups = projection_groups()
        for schema in dict.fromkeys(group.schema for group in groups):
            await connection.execute(
                sql.SQL("LOCK TABLE {}.projection_positions IN ACCESS SHARE MODE").format(
                    sql.Identifier(schema)
                )
            )
        yield await lowest_position(connection, tuple(group.name for group in groups))
