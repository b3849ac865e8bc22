"""Worker process: the relay and the projector groups, until SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

import nats
import psycopg

from application.settings import Settings
from application.store import EventStore
from projections.registry import projection_groups
from projections.schemas import search_path_option
from workers.consumer import run_consumer
from workers.process_managers import run_process_managers
from workers.projector import GroupProjector
from workers.rebuild_requests import serve_rebuild_requests
from workers.relay import Relay
from workers.sealer import run_sealer
from workers.streams import ensure_streams

log = logging.getLogger(__name__)


async def run_workers(
    settings: Settings,
    *,
    relay: bool = True,
    groups: tuple[str, ...] | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """Run the relay and/or projector groups until `stop` (or a termination signal)."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stop.set)
    store = EventStore.connect(settings)
    client = await nats.connect(
        settings.nats_url, name="pms-worker", max_reconnect_attempts=-1, reconnect_time_wait=0.5
    )
    js = client.jetstream(publish_async_max_pending=4000)
    await ensure_streams(js, settings.stream_name)
    connections: list[psycopg.AsyncConnection[tuple[object, ...]]] = []
    tasks = []
    try:
        if relay:
            connection = await psycopg.AsyncConnection.connect(settings.database_url)
            connections.append(connection)
            relay_task = Relay(store, connection, js, max_payload=client.max_payload).run(stop)
            tasks.append(asyncio.create_task(relay_task))
        chosen = tuple(g for g in projection_groups() if groups is None or g.name in groups)
        for group in chosen:
            connection = await psycopg.AsyncConnection.connect(
                settings.database_url, options=search_path_option(group.schema)
            )
            connections.append(connection)
            projector = GroupProjector(group, store, store.app.mapper)
            tasks.append(
                asyncio.create_task(
                    run_consumer(projector, connection, js, settings.stream_name, stop)
                )
            )
        if chosen:
            tasks.append(asyncio.create_task(serve_rebuild_requests(settings, store, chosen, stop)))
        if relay:
            tasks.append(asyncio.create_task(run_process_managers(settings, store, stop)))
        if relay and settings.audit_key:
            tasks.append(asyncio.create_task(run_sealer(settings, stop)))
        elif relay:
            log.warning("PMS_AUDIT_KEY is not set: events are hash-chained but not sealed")
        log.info("workers running: relay=%s groups=%s", relay, groups or "all")
        stopper = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait([stopper, *tasks], return_when=asyncio.FIRST_COMPLETED)
        stop.set()
        for task in done:
            if task is not stopper and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]
        await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        stop.set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for connection in connections:
            await connection.close()
        await client.close()  # every publish was acked already; drain waits on pull fetches
        store.close()
