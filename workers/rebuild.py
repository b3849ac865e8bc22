"""Rebuild a projection group from the event store while its live tables keep serving.

1. Build: create the group's tables in `<schema>_next` and apply every stored event to them,
   a page per transaction, recording the position there (so an interrupted rebuild resumes).
   The live projector and readers keep using `<schema>`; nothing is published.
2. Switch, in one short transaction: take the group's batch lock (the live projector waits),
   apply the events stored since, then rename `<schema>` to `<schema>_old` and `<schema>_next`
   to `<schema>`. Readers and the projector find tables by search_path, so their next
   statement sees the new version, complete and at least as far as the old one.
3. Drop `<schema>_old` (it waits for readers still in the middle of a query on it).

A projection whose SQL names its schema (`read.<table>`) would write the live tables from the
rebuild: such projections are not rebuilt but carried over (their live tables are brought up
to the switch position and moved into the new schema). Today none is.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

import psycopg
from psycopg import AsyncConnection, sql
from psycopg.pq import TransactionStatus

from application.store import EventStore
from projections.base import ProjectionGroup, Stamped
from projections.positions import REBUILD_LOCK, RebuildInProgress
from projections.schemas import next_schema, old_schema, qualified_names, set_search_path
from workers.migrate import group_ddl
from workers.projector import (
    GROUP_LOCK,
    TRACKING_DDL,
    ProjectionFailed,
    apply_events,
    decode,
    in_runs_then_one_at_a_time,
)

log = logging.getLogger(__name__)

PAGE = 2000  # events per build transaction
DROP_LOCK_TIMEOUT = "60s"
SWITCH_LOCK_TIMEOUT = "2s"  # how long a switch waits for readers in the middle of a snapshot
SWITCH_ATTEMPTS = 30

Progress = Callable[[int, int], None]  # (events applied, events to apply)
Work = Callable[[bool], Awaitable[int]]  # applies events (in runs or not), new position


class RebuildFailed(Exception):
    """An event the rebuilt projections cannot apply; the live tables are untouched."""


@dataclass(frozen=True)
class RebuildResult:
    """What a finished rebuild did."""

    group: str
    events: int
    seconds: float
    position: int

    @property
    def events_per_second(self) -> float:
        """Average speed over the whole run."""
        return self.events / self.seconds if self.seconds > 0 else 0.0


def fingerprint(group: ProjectionGroup) -> str:
    """Identifies the group's table definitions: a rebuild resumes only under the same ones."""
    text = TRACKING_DDL + "".join(f"{p.name}\n{p.ddl}" for p in group.projections)
    return hashlib.sha256(text.encode()).hexdigest()


async def _unlock(conn: AsyncConnection[Any], lock: int, group: str) -> None:
    """Release a session lock, unless Ctrl-C left a command running: then the connection is
    closed on the way out, which releases the session's locks anyway."""
    if conn.info.transaction_status == TransactionStatus.IDLE:
        await conn.execute("SELECT pg_advisory_unlock(%s, hashtext(%s))", (lock, group))


def _ident(name: str) -> sql.Identifier:
    return sql.Identifier(name)


class Rebuild:
    """One rebuild of one group; `run()` builds, switches and cleans up."""

    def __init__(
        self,
        group: ProjectionGroup,
        store: EventStore,
        database_url: str,
        *,
        page: int = PAGE,
        progress: Progress | None = None,
    ) -> None:
        self.group = group
        # Projections whose SQL names their schema (read.<table>) write the live tables
        # wherever a rebuild runs: they are not rebuilt, their live tables are carried over.
        self.carried = tuple(p for p in group.projections if qualified_names(p))
        self.rebuilt = replace(
            group, projections=tuple(p for p in group.projections if p not in self.carried)
        )
        self.store = store
        self.database_url = database_url
        self.page = page
        self.progress = progress or (lambda done, total: None)
        self.next = next_schema(group)
        self.done = 0
        self.total = 0

    async def run(self, *, restart: bool = False) -> RebuildResult:
        """Rebuild the group (resuming an interrupted rebuild unless `restart`)."""
        started = time.monotonic()
        async with await AsyncConnection.connect(self.database_url, autocommit=True) as conn:
            cursor = await conn.execute(
                "SELECT pg_try_advisory_lock(%s, hashtext(%s))", (REBUILD_LOCK, self.group.name)
            )
            locked = await cursor.fetchone()
            if not locked or not locked[0]:
                raise RebuildInProgress(f"projection group {self.group.name} is being rebuilt")
            try:
                position = await self._prepare(conn, restart)
                position = await self._build(conn, position)
                position = await self._switch(conn, position)
            finally:
                await _unlock(conn, REBUILD_LOCK, self.group.name)
            await self._drop_old(conn)
        return RebuildResult(self.group.name, self.done, time.monotonic() - started, position)

    async def _prepare(self, conn: AsyncConnection[Any], restart: bool) -> int:
        """Create `<schema>_next`, or find where an interrupted build of it stopped."""
        found = await self._next_row(conn)
        if restart or found is None or found[1] != fingerprint(self.group):
            await conn.execute(
                sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(_ident(self.next))
            )
            await conn.execute(group_ddl(self.group, self.next))
            position = 0
        else:
            position = int(found[0])
            log.info("resuming the rebuild of %s after position %d", self.group.name, position)
        await set_search_path(conn, self.next)
        self.total = await self._count_after(conn, position)
        await conn.execute(
            "INSERT INTO projection_positions (group_name, position, state, fingerprint,"
            " rebuild_total, rebuild_done, rebuild_started_at) VALUES (%s, 0, 'rebuilding', %s,"
            " %s, 0, now()) ON CONFLICT (group_name) DO UPDATE SET state = 'rebuilding',"
            " failed_position = NULL, error = NULL, rebuild_total = EXCLUDED.rebuild_total,"
            " rebuild_done = 0, rebuild_started_at = now()",
            (self.group.name, fingerprint(self.group), self.total),
        )
        return position

    async def _next_row(self, conn: AsyncConnection[Any]) -> tuple[Any, ...] | None:
        cursor = await conn.execute(
            "SELECT to_regclass(%s)", (f"{self.next}.projection_positions",)
        )
        exists = await cursor.fetchone()
        if not exists or exists[0] is None:
            return None
        cursor = await conn.execute(
            sql.SQL(
                "SELECT position, fingerprint FROM {}.projection_positions WHERE group_name = %s"
            ).format(_ident(self.next)),
            (self.group.name,),
        )
        return await cursor.fetchone()

    async def _count_after(self, conn: AsyncConnection[Any], position: int) -> int:
        cursor = await conn.execute(
            "SELECT count(*) FROM public.pms_events WHERE notification_id > %s", (position,)
        )
        row = await cursor.fetchone()
        return int(row[0]) if row else 0

    async def _read(self, after: int, *, stop: int | None = None) -> Sequence[Stamped]:
        """The next page of events, decoded in a thread (beside the page being applied)."""
        return await asyncio.to_thread(self._decoded, after, stop)

    def _decoded(self, after: int, stop: int | None) -> Sequence[Stamped]:
        page = self.store.notifications(after, self.page, stop=stop)
        return decode(self.group, self.store.app.mapper, page)

    async def _in_transaction(self, conn: AsyncConnection[Any], work: Work) -> int:
        """Run `work` in a transaction, in runs, or if that fails, one event at a time (see
        `in_runs_then_one_at_a_time`).

        The commit does not wait for the WAL flush: a crash may lose the last transactions,
        each with the position it recorded, and the rebuild resumes before them. (The switch
        commits durably, and with it everything before.)
        """

        async def attempt(runs: bool) -> int:
            async with conn.transaction():
                await conn.execute("SET LOCAL synchronous_commit = off")
                return await work(runs)

        return await in_runs_then_one_at_a_time(attempt)

    async def _apply_page(
        self,
        conn: AsyncConnection[Any],
        page: Sequence[Stamped],
        serving: int | None,
        runs: bool,
    ) -> int:
        """Apply a page and record the position, in the caller's transaction.

        Events after `serving` (the live position, while the projector waits) also go to the
        carried projections; before the switch they are applied to the rebuilt ones only.
        Nothing is published, so no changes are worked out.
        """
        served = len(page) if serving is None else sum(1 for _, i in page if i.position <= serving)
        position = page[-1][1].position
        async with conn.cursor() as cursor:
            await apply_events(self.rebuilt, cursor, page[:served], runs=runs, announce=False)
            await apply_events(self.group, cursor, page[served:], runs=runs, announce=False)
            await cursor.execute(
                "UPDATE projection_positions SET position = %s,"
                " rebuild_done = rebuild_done + %s, updated_at = now() WHERE group_name = %s",
                (position, len(page), self.group.name),
            )
        self.done += len(page)
        self.total = max(self.total, self.done)
        return position

    async def _build(self, conn: AsyncConnection[Any], position: int) -> int:
        """Apply stored events page by page until a page comes back short (near the head)."""
        self.progress(self.done, self.total)
        pending = asyncio.ensure_future(self._read(position))
        try:
            while True:
                try:
                    page = await pending
                    if not page:
                        return position
                    # Read the next page while this one is applied.
                    pending = asyncio.ensure_future(self._read(page[-1][1].position))
                    position = await self._in_transaction(
                        conn, partial(self._apply_page, conn, page, None)
                    )
                except ProjectionFailed as failure:
                    await self._failed(conn, failure)
                self.progress(self.done, self.total)
                if len(page) < self.page:
                    return position
        finally:
            pending.cancel()

    async def _failed(self, conn: AsyncConnection[Any], failure: ProjectionFailed) -> None:
        await conn.execute(
            "UPDATE projection_positions SET state = 'failed', failed_position = %s,"
            " error = %s, updated_at = now() WHERE group_name = %s",
            (failure.position, failure.error, self.group.name),
        )
        raise RebuildFailed(str(failure)) from failure

    async def _switch(self, conn: AsyncConnection[Any], position: int) -> int:
        """Catch up with the last events and swap the schemas, while the projector waits.

        With the group's lock held for the session (the live projector waits), the last events
        are applied and committed first; then one transaction, which changes no rows, waits
        for readers in the middle of a snapshot (they lock the position table before taking
        one) and renames the schemas. Any snapshot that sees the new names sees complete
        tables. When readers keep the position table busy, the projector goes on for a while
        and the switch is tried again.
        """
        await conn.execute(
            sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(_ident(old_schema(self.group)))
        )
        for attempt in range(SWITCH_ATTEMPTS):
            if attempt:
                position = await self._build(conn, position)
            await conn.execute(
                "SELECT pg_advisory_lock(%s, hashtext(%s))", (GROUP_LOCK, self.group.name)
            )
            try:
                try:
                    position = await self._in_transaction(
                        conn, partial(self._catch_up_last, conn, position)
                    )
                except ProjectionFailed as failure:
                    await self._failed(conn, failure)
                try:
                    async with conn.transaction():
                        await self._rename(conn)
                except psycopg.errors.LockNotAvailable:
                    log.info("readers hold %s; switching again shortly", self.group.schema)
                    continue
            finally:
                await _unlock(conn, GROUP_LOCK, self.group.name)
            self.progress(self.done, self.total)
            log.info("projection group %s switched at %d", self.group.name, position)
            return position
        raise RebuildFailed("readers kept the tables busy; run the rebuild again to resume")

    async def _catch_up_last(self, conn: AsyncConnection[Any], position: int, runs: bool) -> int:
        """Apply what was stored since, up to where the (waiting) live projector is at least."""
        cursor = await conn.execute(
            sql.SQL("SELECT position FROM {}.projection_positions WHERE group_name = %s").format(
                _ident(self.group.schema)
            ),
            (self.group.name,),
        )
        row = await cursor.fetchone()
        serving = int(row[0]) if row else 0
        await self._carry_up(conn, serving, position, runs)
        while page := await self._read(position):
            position = await self._apply_page(conn, page, serving, runs)
            if len(page) < self.page:
                break
        if position < serving:
            raise RebuildFailed(f"rebuilt to {position}, behind the live {serving}")
        return position

    async def _rename(self, conn: AsyncConnection[Any]) -> None:
        """Make the rebuilt tables the live ones (changing no rows readers could see)."""
        live = _ident(self.group.schema)
        await conn.execute(
            sql.SQL("SET LOCAL lock_timeout = {}").format(sql.Literal(SWITCH_LOCK_TIMEOUT))
        )
        await conn.execute(
            sql.SQL("LOCK TABLE {}.projection_positions IN ACCESS EXCLUSIVE MODE").format(live)
        )
        for table in (table for p in self.carried for table in p.tables):
            await conn.execute(
                sql.SQL("ALTER TABLE {}.{} SET SCHEMA {}").format(
                    live, _ident(table), _ident(self.next)
                )
            )
        await conn.execute(
            "UPDATE projection_positions SET state = 'running', failed_position = NULL,"
            " error = NULL, fingerprint = NULL, rebuild_total = NULL, rebuild_done = NULL,"
            " rebuild_started_at = NULL, rebuild_requested_at = NULL, event_at = now(),"
            " updated_at = now() WHERE group_name = %s",
            (self.group.name,),
        )
        await conn.execute(
            sql.SQL("ALTER SCHEMA {} RENAME TO {}").format(live, _ident(old_schema(self.group)))
        )
        await conn.execute(sql.SQL("ALTER SCHEMA {} RENAME TO {}").format(_ident(self.next), live))

    async def _carry_up(
        self, conn: AsyncConnection[Any], serving: int, position: int, runs: bool
    ) -> None:
        """Bring the carried tables from the live position up to the rebuilt one."""
        carried = replace(self.group, projections=self.carried)
        while self.carried and serving < position:
            page = await self._read(serving, stop=position)
            if not page:
                return
            async with conn.cursor() as cursor:
                await apply_events(carried, cursor, page, runs=runs, announce=False)
            serving = page[-1][1].position

    async def _drop_old(self, conn: AsyncConnection[Any]) -> None:
        """Drop the replaced tables once no reader uses them (a later rebuild retries)."""
        try:
            await conn.execute(
                sql.SQL("SET lock_timeout = {}").format(sql.Literal(DROP_LOCK_TIMEOUT))
            )
            await conn.execute(
                sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(_ident(old_schema(self.group)))
            )
        except psycopg.errors.LockNotAvailable:
            log.warning("the replaced tables of %s are still in use; not dropped", self.group.name)
