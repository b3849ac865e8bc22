"""The projector: applies events to read models, position-tracked, exactly once per group."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from operator import attrgetter
from typing import Any, TypeVar
from uuid import UUID

import msgspec
import psycopg
from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import Mapper
from psycopg import AsyncConnection, AsyncCursor
from psycopg.rows import TupleRow

from application.recorder import StoredNotification
from application.store import EventStore
from projections.base import (
    SCHEMA,
    BatchProjection,
    Change,
    Dispatch,
    EventInfo,
    Projection,
    ProjectionGroup,
    Stamped,
)

log = logging.getLogger(__name__)

CATCH_UP_PAGE = 1000
STORE_PAGE = 2000  # events per transaction when catching up from the store

GROUP_LOCK = 724010
"""Advisory lock class of a group's batches (with hashtext(group)): a rebuild's switch takes it."""

TRACKING_DDL = """
CREATE TABLE IF NOT EXISTS projection_positions (
    group_name text PRIMARY KEY,
    position bigint NOT NULL DEFAULT 0,
    event_at timestamptz,
    updated_at timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE projection_positions
    ADD COLUMN IF NOT EXISTS state text NOT NULL DEFAULT 'running',
    ADD COLUMN IF NOT EXISTS failed_position bigint,
    ADD COLUMN IF NOT EXISTS error text,
    ADD COLUMN IF NOT EXISTS rebuild_requested_at timestamptz,
    ADD COLUMN IF NOT EXISTS rebuild_started_at timestamptz,
    ADD COLUMN IF NOT EXISTS rebuild_total bigint,
    ADD COLUMN IF NOT EXISTS rebuild_done bigint,
    ADD COLUMN IF NOT EXISTS fingerprint text;
"""
"""The position table, created in each group's schema (so it moves with the group's tables)."""

OUTBOX = "public.pms_change_outbox"
OUTBOX_DDL = f"""
CREATE TABLE IF NOT EXISTS {OUTBOX} (
    group_name text NOT NULL,
    position bigint NOT NULL,
    seq integer NOT NULL,
    topic text NOT NULL,
    event text NOT NULL,
    data jsonb NOT NULL,
    PRIMARY KEY (group_name, position, seq)
);
DO $$ BEGIN
    IF to_regclass('{SCHEMA}.change_outbox') IS NOT NULL THEN
        INSERT INTO {OUTBOX} SELECT * FROM {SCHEMA}.change_outbox ON CONFLICT DO NOTHING;
        DROP TABLE {SCHEMA}.change_outbox;
    END IF;
END $$;
"""
"""Live changes waiting to be published: outside the groups' schemas, so a rebuild (which
publishes nothing) neither copies nor loses them. Earlier versions kept it in `read`."""


_encoder = msgspec.json.Encoder()


def _json(data: dict[str, Any]) -> str:
    """Change data as JSON text, for COPY into the jsonb column."""
    return _encoder.encode(data).decode()


class ProjectionFailed(Exception):
    """An event a projection cannot apply (a poison event): the group stops there."""

    def __init__(self, group: str, position: int, error: BaseException) -> None:
        super().__init__(f"projection group {group} failed at position {position}: {error!r}")
        self.group = group
        self.position = position
        self.error = f"{type(error).__name__}: {error}"[:2000]


class RunFailed(Exception):
    """A run of events failed as a whole: apply them again one at a time to find out which."""

    def __init__(self, group: str, first: int, last: int) -> None:
        super().__init__(f"projection group {group}: the run {first}..{last} failed")


_T = TypeVar("_T")


async def in_runs_then_one_at_a_time(work: Callable[[bool], Awaitable[_T]]) -> _T:
    """`work(True)`: events in runs. If that fails, `work(False)`: one event at a time, which
    names the event that fails (a run fails as a whole). `work` runs its own transaction,
    rolled back when it fails."""
    try:
        return await work(True)
    except (psycopg.OperationalError, psycopg.InterfaceError):
        raise  # the database, not an event: the caller restarts and retries
    except (RunFailed, ProjectionFailed, psycopg.Error) as failed:
        log.warning("%s; applying the events again one at a time", failed)
        return await work(False)


@dataclass
class Incoming:
    """An event delivered by the transport, with the position published before it."""

    notification: StoredNotification
    previous: int


@dataclass
class BatchResult:
    """What one committed batch did."""

    position: int
    applied: int = 0
    skipped: int = 0
    caught_up: int = 0
    changes: list[Change] = field(default_factory=list)


class GroupProjector:
    """Applies events to one projection group's tables in one transaction per batch.

    The tracked position is locked and updated in the same transaction as the row changes,
    so an event at or below it is skipped (never applied twice), and an event whose
    predecessor has not been applied makes the projector read the missing ones from the
    store first (never skipped), whatever the transport delivered.
    """

    def __init__(self, group: ProjectionGroup, store: EventStore, mapper: Mapper[UUID]) -> None:
        self.group = group
        self.store = store
        self.mapper = mapper

    async def ensure_tracking(self, connection: AsyncConnection[TupleRow]) -> None:
        """Create the group's position row if missing; a restart retries a failed group."""
        await connection.execute(
            "INSERT INTO projection_positions (group_name) VALUES (%s)"
            " ON CONFLICT (group_name) DO UPDATE SET state = 'running', failed_position = NULL,"
            " error = NULL",
            (self.group.name,),
        )
        await connection.commit()

    async def mark_failed(
        self, connection: AsyncConnection[TupleRow], failure: ProjectionFailed
    ) -> None:
        """Record where and why the group stopped, for status and /health."""
        await connection.execute(
            "UPDATE projection_positions SET state = 'failed', failed_position = %s,"
            " error = %s, updated_at = now() WHERE group_name = %s",
            (failure.position, failure.error, self.group.name),
        )
        await connection.commit()

    async def apply_batch(
        self, connection: AsyncConnection[TupleRow], batch: Sequence[Incoming]
    ) -> BatchResult:
        """Apply a batch of delivered events and commit; return the new position and changes."""
        return await in_runs_then_one_at_a_time(partial(self._apply_batch, connection, batch))

    async def _apply_batch(
        self, connection: AsyncConnection[TupleRow], batch: Sequence[Incoming], runs: bool
    ) -> BatchResult:
        async with connection.transaction(), connection.cursor() as cursor:
            # First, before any table name is resolved: a rebuild switches the group's schema
            # while it holds this lock, so the whole batch sees one version of the tables.
            await cursor.execute(
                "SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (GROUP_LOCK, self.group.name)
            )
            await cursor.execute(
                "SELECT position FROM projection_positions WHERE group_name = %s FOR UPDATE",
                (self.group.name,),
            )
            row = await cursor.fetchone()
            if row is None:
                raise RuntimeError(f"projection group {self.group.name} has no position row")
            result = BatchResult(position=int(row[0]))
            todo: list[StoredNotification] = []
            for incoming in batch:
                notification = incoming.notification
                if notification.id <= result.position:
                    result.skipped += 1
                    continue
                if incoming.previous > result.position:
                    missing = await self._missing(result.position, incoming.previous)
                    todo += missing
                    result.caught_up += len(missing)
                todo.append(notification)
                result.applied += 1
                result.position = notification.id
            result.changes = await apply_notifications(
                self.group, self.mapper, cursor, todo, runs=runs
            )
            if todo:
                await cursor.execute(
                    "UPDATE projection_positions SET position = %s, event_at = now(),"
                    " updated_at = now() WHERE group_name = %s",
                    (result.position, self.group.name),
                )
            if result.changes:
                # Committed with the rows they describe, so a crash before publishing
                # cannot lose them: the next start publishes what is left here.
                async with cursor.copy(
                    f"COPY {OUTBOX} (group_name, position, seq, topic, event, data) FROM STDIN"
                ) as copy:
                    for seq, c in enumerate(result.changes):
                        await copy.write_row(
                            (self.group.name, c.position, seq, c.topic, c.event, _json(c.data))
                        )
        return result

    async def position(self, connection: AsyncConnection[TupleRow]) -> int:
        """The group's tracked position."""
        cursor = await connection.execute(
            "SELECT position FROM projection_positions WHERE group_name = %s", (self.group.name,)
        )
        row = await cursor.fetchone()
        await connection.commit()
        return int(row[0]) if row else 0

    async def stored(self, after: int) -> list[Incoming]:
        """A page of stored events after position `after`, as if delivered in order."""
        page = await asyncio.to_thread(self.store.notifications, after, STORE_PAGE)
        previous = [after, *(n.id for n in page)]
        return [Incoming(n, p) for n, p in zip(page, previous, strict=False)]

    async def unpublished_changes(self, connection: AsyncConnection[TupleRow]) -> list[Change]:
        """Changes committed but not yet confirmed as published, oldest first."""
        cursor = await connection.execute(
            f"SELECT position, topic, event, data FROM {OUTBOX}"
            " WHERE group_name = %s ORDER BY position, seq",
            (self.group.name,),
        )
        rows = await cursor.fetchall()
        await connection.commit()
        return [Change(topic=t, event=e, data=d, position=p) for p, t, e, d in rows]

    async def forget_published(self, connection: AsyncConnection[TupleRow], up_to: int) -> None:
        """Drop outbox rows whose publication JetStream acknowledged."""
        await connection.execute(
            f"DELETE FROM {OUTBOX} WHERE group_name = %s AND position <= %s",
            (self.group.name, up_to),
        )
        await connection.commit()

    async def _missing(self, after: int, until: int) -> list[StoredNotification]:
        """What the transport did not deliver, read from the store: after `after` up to
        `until` (the position published before the next delivered event)."""
        missing: list[StoredNotification] = []
        while True:
            page = await asyncio.to_thread(
                self.store.notifications, after, CATCH_UP_PAGE, stop=until
            )
            missing += page
            if len(page) < CATCH_UP_PAGE:
                return missing
            after = page[-1].id


Handled = tuple[DomainEventProtocol[Any], EventInfo, tuple[Projection, ...]]
"""An event, where it sits, and the projections that handle it."""


async def apply_notifications(
    group: ProjectionGroup,
    mapper: Mapper[UUID],
    cursor: AsyncCursor[TupleRow],
    notifications: Sequence[StoredNotification],
    *,
    runs: bool = True,
) -> list[Change]:
    """Decode stored events and apply them, in order, to the projections of `group`."""
    return await apply_events(group, cursor, decode(group, mapper, notifications), runs=runs)


def decode(
    group: ProjectionGroup, mapper: Mapper[UUID], notifications: Sequence[StoredNotification]
) -> list[Stamped]:
    """Stored events as domain events with where they sit; one that cannot be decoded stops
    the group there (ProjectionFailed names its position)."""
    return [_decode(group, mapper, notification) for notification in notifications]


async def apply_events(
    group: ProjectionGroup,
    cursor: AsyncCursor[TupleRow],
    events: Sequence[Stamped],
    *,
    runs: bool = True,
    announce: bool = True,
) -> list[Change]:
    """Apply events, in order, to the projections of `group`.

    Consecutive events that every projection handling them batches (stock movements, new
    products) go to each of them as one run, projection after projection; any other event goes
    through every projection that handles it on its own. An event that commutes with the run
    so far (its projections and the run's touch no table the other writes: a payment amid
    stock movements) is applied at once and the run goes on; any other ends the run first. All
    give the rows and changes of applying the events one at a time. Live batches and
    rebuilds both apply events through here, so they write the same rows. With `announce`
    False (a rebuild publishes nothing) batch projections may skip working out their changes.

    A run that fails raises RunFailed: the caller rolls the transaction back and applies the
    same events again with `runs=False`, one at a time, which names the event that fails.
    """
    changes: list[Change] = []
    run = Run()
    for stamped in events:
        dispatch = group.dispatch(stamped[0])
        if not dispatch.handlers:
            continue  # no projection of the group reads it: it does not end a run
        if runs and dispatch.batched:
            run.add(stamped, dispatch)
            continue
        if run.events and not dispatch.commutes(run.reads, run.writes):
            changes += await _apply_run(group, cursor, run, announce)
            run = Run()
        event, info = stamped
        try:
            changes += await _apply_one(group, cursor, event, info, dispatch.handlers)
        except ProjectionFailed as failed:
            if not run.events:
                raise
            # Applied ahead of the run: an event of the run before it may be the first to fail.
            raise RunFailed(group.name, run.first, info.position) from failed
    if run.events:
        changes += await _apply_run(group, cursor, run, announce)
    # Per event (runs apply projection after projection, and some events go ahead of runs),
    # each event's in the group's order of projections: the sort is stable.
    return sorted(changes, key=attrgetter("position"))


@dataclass
class Run:
    """Consecutive events that batch projections apply together: each projection's share,
    and the tables the run reads and writes."""

    events: list[Handled] = field(default_factory=list)
    shares: dict[Projection, list[Stamped]] = field(default_factory=dict)
    reads: set[str] = field(default_factory=set)
    writes: set[str] = field(default_factory=set)

    @property
    def first(self) -> int:
        """The position of its first event."""
        return self.events[0][1].position

    def add(self, stamped: Stamped, dispatch: Dispatch) -> None:
        """One more event, for the projections that handle it."""
        self.events.append((*stamped, dispatch.handlers))
        for projection in dispatch.handlers:
            share = self.shares.get(projection)
            if share is None:
                self.shares[projection] = [stamped]
            else:
                share.append(stamped)
        self.reads |= dispatch.reads
        self.writes |= dispatch.writes


def _decode(
    group: ProjectionGroup, mapper: Mapper[UUID], notification: StoredNotification
) -> Stamped:
    try:
        event = mapper.to_domain_event(notification)
        timestamp = getattr(event, "timestamp")  # noqa: B009 - not on the protocol
    except Exception as error:
        raise ProjectionFailed(group.name, notification.id, error) from error
    return event, EventInfo(notification.id, timestamp, notification.metadata)


async def _apply_one(
    group: ProjectionGroup,
    cursor: AsyncCursor[TupleRow],
    event: DomainEventProtocol[Any],
    info: EventInfo,
    handlers: Sequence[Projection],
) -> list[Change]:
    changes: list[Change] = []
    try:
        for projection in handlers:
            applied = await projection.apply(cursor, event, info)
            changes.extend(replace(c, position=info.position) for c in applied)
    except (psycopg.OperationalError, psycopg.InterfaceError):
        raise  # the database, not the event: the process restarts and retries
    except Exception as error:
        raise ProjectionFailed(group.name, info.position, error) from error
    return changes


async def _apply_run(
    group: ProjectionGroup,
    cursor: AsyncCursor[TupleRow],
    run: Run,
    announce: bool,
) -> list[Change]:
    """Apply a run of events (with their handlers, all batch projections) projection after
    projection."""
    if len(run.events) == 1:
        return await _apply_one(group, cursor, *run.events[0])
    changes: list[Change] = []
    try:
        for projection in group.projections:
            share = run.shares.get(projection)
            if share:
                assert isinstance(projection, BatchProjection)
                changes += await projection.apply_batch(cursor, share, announce=announce)
    except (psycopg.OperationalError, psycopg.InterfaceError):
        raise
    except Exception as error:
        raise RunFailed(group.name, run.first, run.events[-1][1].position) from error
    return changes  # projection after projection: the caller sorts them by event
