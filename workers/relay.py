"""The relay: tails the event store and publishes every event once, in order, to JetStream."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from nats.aio.client import DEFAULT_MAX_PAYLOAD_SIZE
from nats.js import JetStreamContext
from psycopg import AsyncConnection
from psycopg.rows import TupleRow

from application.recorder import StoredNotification
from application.store import EventStore
from workers import envelope

log = logging.getLogger(__name__)

HEADERS_ALLOWANCE = 4096  # room left in a message for its headers

DDL = """
CREATE TABLE IF NOT EXISTS public.pms_relay_position (
    name text PRIMARY KEY,
    position bigint NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
"""


class Relay:
    """Publishes stored events after its persisted position; persists after the acks."""

    def __init__(
        self,
        store: EventStore,
        connection: AsyncConnection[TupleRow],
        js: JetStreamContext,
        *,
        name: str = "relay",
        batch: int = 500,
        max_payload: int = DEFAULT_MAX_PAYLOAD_SIZE,
    ) -> None:
        self.store = store
        self.connection = connection
        self.js = js
        self.name = name
        self.batch = batch
        self.max_payload = max_payload  # the server's, from its INFO (`Client.max_payload`)
        self.position = 0

    async def load_position(self) -> int:
        """Read where the last run stopped (0 when it never ran)."""
        cursor = await self.connection.execute(
            "SELECT position FROM public.pms_relay_position WHERE name = %s", (self.name,)
        )
        row = await cursor.fetchone()
        await self.connection.commit()
        self.position = int(row[0]) if row else 0
        return self.position

    async def pump_once(self) -> int:
        """Publish the next batch of events; return how many were published."""
        page: Sequence[StoredNotification] = await asyncio.to_thread(
            self.store.notifications, self.position, self.batch
        )
        if not page:
            return 0
        previous = self.position
        acks = []
        for notification in page:
            body = envelope.encode(notification)
            if len(body) + HEADERS_ALLOWANCE > self.max_payload:
                # NATS refuses it, and retrying would stop every event after it. The next
                # message names it as its previous position, so the projector reads it from
                # the store, as it reads any event it did not receive.
                log.error(
                    "event at position %d is %d bytes, more than NATS takes (%d): not"
                    " published, consumers read it from the store",
                    notification.id,
                    len(body),
                    self.max_payload,
                )
                previous = notification.id
                continue
            correlation = str(notification.metadata.get("correlationId", ""))
            acks.append(
                await self.js.publish_async(
                    envelope.subject_for(notification.topic),
                    body,
                    headers=envelope.headers(notification, previous, correlation),
                )
            )
            previous = notification.id
        await asyncio.gather(*acks)  # raises if any publish failed: nothing is persisted then
        await self.connection.execute(
            "INSERT INTO public.pms_relay_position (name, position) VALUES (%s, %s)"
            " ON CONFLICT (name) DO UPDATE SET position = EXCLUDED.position, updated_at = now()",
            (self.name, previous),
        )
        await self.connection.commit()
        self.position = previous
        return len(page)

    async def run(self, stop: asyncio.Event, *, max_idle_sleep: float = 0.01) -> None:
        """Publish until `stop` is set, polling with a short back-off when idle."""
        await self.load_position()
        log.info("relay starting after position %d", self.position)
        idle_sleep = 0.001
        while not stop.is_set():
            try:
                published = await self.pump_once()
            except Exception:
                # Nothing after the persisted position counts as published: start again there.
                log.exception("relay batch failed; retrying from position %d", self.position)
                await asyncio.sleep(1.0)
                await self.load_position()
                continue
            if published:
                idle_sleep = 0.001
                continue
            try:
                await asyncio.wait_for(stop.wait(), idle_sleep)
            except TimeoutError:
                idle_sleep = min(idle_sleep * 2, max_idle_sleep)
