"""The projector: applies events to read models, position-tracked, exactly once per group."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from uuid import UUID

import psycopg
from eventsourcing.persistence import Mapper
from psycopg import AsyncConnection, AsyncCursor
from psycopg.rows import TupleRow
from psycopg.types.json import Jsonb

from application.recorder import StoredNotification
from application.store import EventStore
from projections.base import SCHEMA, Change, EventInfo, ProjectionGroup

log = logging.getLogger(__name__)

CATCH_UP_PAGE = 1000

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


class ProjectionFailed(Exception):
    """An event a projection cannot apply (a poison event): the group stops there."""

    def __init__(self, group: str, position: int, error: BaseException) -> None:
        super().__init__(f"projection group {group} failed at position {position}: {error!r}")
        self.group = group
        self.position = position
        self.error = f"{type(error).__name__}: {error}"[:2000]


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
            for incoming in batch:
                notification = incoming.notification
                if notification.id <= result.position:
                    result.skipped += 1
                    continue
                if incoming.previous > result.position:
                    await self._catch_up(cursor, incoming.previous, result)
                await self._apply(cursor, notification, result)
                result.applied += 1
            if result.applied or result.caught_up:
                await cursor.execute(
                    "UPDATE projection_positions SET position = %s, event_at = now(),"
                    " updated_at = now() WHERE group_name = %s",
                    (result.position, self.group.name),
                )
            if result.changes:
                # Committed with the rows they describe, so a crash before publishing
                # cannot lose them: the next start publishes what is left here.
                await cursor.executemany(
                    f"INSERT INTO {OUTBOX} (group_name, position, seq, topic,"
                    " event, data) VALUES (%s, %s, %s, %s, %s, %s)",
                    [
                        (self.group.name, c.position, seq, c.topic, c.event, Jsonb(c.data))
                        for seq, c in enumerate(result.changes)
                    ],
                )
        return result

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

    async def _catch_up(
        self, cursor: AsyncCursor[TupleRow], until: int, result: BatchResult
    ) -> None:
        """Apply what the transport did not deliver, read from the store, up to `until`."""
        while result.position < until:
            page = await asyncio.to_thread(
                self.store.notifications, result.position, CATCH_UP_PAGE, stop=until
            )
            for earlier in page:
                await self._apply(cursor, earlier, result)
                result.caught_up += 1
            if len(page) < CATCH_UP_PAGE:
                return

    async def _apply(
        self, cursor: AsyncCursor[TupleRow], notification: StoredNotification, result: BatchResult
    ) -> None:
        result.changes.extend(
            await apply_notification(self.group, self.mapper, cursor, notification)
        )
        result.position = notification.id


async def apply_notification(
    group: ProjectionGroup,
    mapper: Mapper[UUID],
    cursor: AsyncCursor[TupleRow],
    notification: StoredNotification,
) -> list[Change]:
    """Decode a stored event and apply it to each projection of `group` that handles it.

    Live batches and rebuilds both apply events through here, so they write the same rows.
    """
    changes: list[Change] = []
    try:
        event = mapper.to_domain_event(notification)
        info = EventInfo(
            position=notification.id,
            timestamp=getattr(event, "timestamp"),  # noqa: B009 - not on the protocol
            metadata=notification.metadata,
        )
        for projection in group.projections:
            if projection.handles(event):
                applied = await projection.apply(cursor, event, info)
                changes.extend(replace(c, position=notification.id) for c in applied)
    except (psycopg.OperationalError, psycopg.InterfaceError):
        raise  # the database, not the event: the process restarts and retries
    except Exception as error:
        raise ProjectionFailed(group.name, notification.id, error) from error
    return changes
