"""An event a projection cannot apply stops its group visibly; the rest keeps running."""

from __future__ import annotations

import asyncio
import json
import time

import nats
import psycopg
from eventsourcing.persistence import StoredEvent
from eventsourcing.utils import get_topic
from nats.aio.client import Client as NatsClient
from support import PmsProcess

from application.catalogue import CreateProduct, create_product
from application.context import CommandContext
from application.recorder import XidOrderedRecorder
from application.settings import Settings
from application.store import EventStore
from domain.catalogue import Product
from domain.values import Money


def _group_row(url: str) -> tuple[str, int | None, str | None, int]:
    with psycopg.connect(url) as connection:
        row = connection.execute(
            "SELECT state, failed_position, error, position FROM read.projection_positions"
            " WHERE group_name = 'main'"
        ).fetchone()
    return (row[0], row[1], row[2], row[3]) if row else ("missing", None, None, 0)


async def _listen_for_alerts(nats_url: str, into: list[dict[str, object]]) -> NatsClient:
    client = await nats.connect(nats_url)

    async def keep(message: object) -> None:
        into.append(json.loads(getattr(message, "data")))  # noqa: B009

    await client.subscribe("pms.changes.alerts", cb=keep)
    return client


def test_a_poison_event_stops_its_group_with_position_and_error(
    isolated: tuple[Settings, EventStore],
) -> None:
    settings, store = isolated
    context = CommandContext.system("test")
    good = create_product(
        store, context, CreateProduct(sku="OK-1", name="A", price=Money(1, "EUR"))
    )
    recorder = store.app.recorder
    assert isinstance(recorder, XidOrderedRecorder)
    # A price change whose stored state lacks the price: the products projection cannot apply it.
    [poison] = recorder.insert_events(
        [
            StoredEvent(
                originator_id=good.value.id,
                originator_version=2,
                topic=get_topic(Product.PriceChanged),
                state=b'{"timestamp":{"_type_":"datetime_iso","_data_":"2026-11-21T08:00:00+00:00"}}',
            )
        ],
        metadata={"actor": "system:test"},
    ) or [0]
    alerts: list[dict[str, object]] = []

    async def run() -> None:
        listener = await _listen_for_alerts(settings.nats_url, alerts)
        worker = PmsProcess("worker", settings).start()
        try:
            deadline = time.monotonic() + 30
            while _group_row(settings.database_url)[0] != "failed":
                assert time.monotonic() < deadline, "the group never stopped"
                await asyncio.sleep(0.1)
            await asyncio.sleep(0.5)
            assert worker.process is not None
            assert worker.process.poll() is None, "the worker process keeps running"
        finally:
            worker.stop()
            await listener.close()

    asyncio.run(run())
    state, failed_position, error, position = _group_row(settings.database_url)
    assert state == "failed"
    assert failed_position == poison
    assert error is not None
    assert "price_amount" in error
    assert position < poison  # everything before the poison event was applied
    [alert] = [a for a in alerts if a["event"] == "system_alert"]
    assert alert["position"] == poison
    assert isinstance(alert["data"], dict)
    assert alert["data"]["type"] == "projection_failed"
