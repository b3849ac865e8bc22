"""Rebuilds asked for over HTTP (POST /projections/{name}/rebuild), run by the group's worker."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import psycopg
from psycopg import AsyncConnection, sql

from application.settings import Settings
from application.store import EventStore
from projections.base import ProjectionGroup
from projections.positions import RebuildInProgress
from workers.rebuild import Progress, Rebuild, RebuildFailed

log = logging.getLogger(__name__)

POLL_SECONDS = 1.0
LOG_EVERY_SECONDS = 5.0


async def _requested(
    connection: AsyncConnection[tuple[object, ...]], group: ProjectionGroup
) -> bool:
    cursor = await connection.execute(
        sql.SQL(
            "SELECT rebuild_requested_at IS NOT NULL FROM {}.projection_positions"
            " WHERE group_name = %s"
        ).format(sql.Identifier(group.schema)),
        (group.name,),
    )
    row = await cursor.fetchone()
    return bool(row and row[0])


async def _clear(connection: AsyncConnection[tuple[object, ...]], group: ProjectionGroup) -> None:
    await connection.execute(
        sql.SQL(
            "UPDATE {}.projection_positions SET rebuild_requested_at = NULL WHERE group_name = %s"
        ).format(sql.Identifier(group.schema)),
        (group.name,),
    )


def _logged(group: str) -> Progress:
    last = [0.0]

    def report(done: int, total: int) -> None:
        if time.monotonic() - last[0] >= LOG_EVERY_SECONDS:
            last[0] = time.monotonic()
            log.info("rebuilding %s: %d of %d events", group, done, total)

    return report


async def serve_rebuild_requests(
    settings: Settings,
    store: EventStore,
    groups: tuple[ProjectionGroup, ...],
    stop: asyncio.Event,
) -> None:
    """Poll for requested rebuilds of `groups` and run them, one at a time, until `stop`."""
    async with await AsyncConnection.connect(settings.database_url, autocommit=True) as conn:
        while not stop.is_set():
            for group in groups:
                try:
                    wanted = await _requested(conn, group)
                except psycopg.errors.UndefinedTable:
                    wanted = False  # not migrated yet, or in the middle of a switch
                if not wanted:
                    continue
                try:
                    rebuild = Rebuild(
                        group, store, settings.database_url, progress=_logged(group.name)
                    )
                    result = await rebuild.run()
                except RebuildInProgress:
                    continue  # someone else (pms projections rebuild) is at it
                except RebuildFailed as failed:
                    log.error("rebuild of %s failed: %s", group.name, failed)
                    await _clear(conn, group)
                    continue
                log.info(
                    "rebuilt %s: %d events in %.1f s (%.0f events/s)",
                    group.name,
                    result.events,
                    result.seconds,
                    result.events_per_second,
                )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), POLL_SECONDS)
