"""A projector started behind a backlog applies it from the store, page by page, then follows
new events as messages: the read model ends equal to the store, every event applied once."""

from __future__ import annotations

import asyncio
import time

import nats
import psycopg
from nats.js.api import AckPolicy, DeliverPolicy
from nats.js.errors import NotFoundError
from support import PmsProcess

from application.catalogue import CreateProduct, create_product
from application.context import CommandContext
from application.inventory import ReceiveStock, receive_stock
from application.locations import CreateLocation, create_location
from application.settings import Settings
from application.store import EventStore
from domain.inventory import StockItem
from domain.values import Money
from workers.consumer import consumer_name
from workers.projector import STORE_PAGE


def _state(database_url: str) -> tuple[int, int, int]:
    """Projected position, on hand of the one stock item, ledger rows."""
    with psycopg.connect(database_url) as connection:
        row = connection.execute(
            "SELECT (SELECT position FROM read.projection_positions WHERE group_name = 'main'),"
            " (SELECT COALESCE(sum(on_hand), 0) FROM read.stock_levels),"
            " (SELECT count(*) FROM read.stock_moves)"
        ).fetchone()
    assert row is not None
    return int(row[0] or 0), int(row[1]), int(row[2])


def _wait_for(database_url: str, position: int) -> tuple[int, int, int]:
    deadline = time.monotonic() + 60
    while (state := _state(database_url))[0] < position:
        assert time.monotonic() < deadline, f"projected {state[0]}, stored {position}"
        time.sleep(0.1)
    return state


async def _consumer_config(settings: Settings) -> tuple[AckPolicy | None, DeliverPolicy | None]:
    """The group's durable consumer, once the projector has made it."""
    client = await nats.connect(settings.nats_url)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                info = await client.jetstream().consumer_info(
                    settings.stream_name, consumer_name("main")
                )
            except NotFoundError:
                assert time.monotonic() < deadline, "no consumer"
                await asyncio.sleep(0.1)
                continue
            return info.config.ack_policy, info.config.deliver_policy
    finally:
        await client.close()


def test_a_projector_behind_a_backlog_catches_up_from_the_store_then_follows_messages(
    isolated: tuple[Settings, EventStore],
) -> None:
    settings, store = isolated
    context = CommandContext.system("test")
    location = create_location(store, context, CreateLocation(code="W1", name="W1")).value
    product = create_product(
        store, context, CreateProduct(sku="CU-1", name="A", price=Money(100, "EUR"))
    ).value
    receipts = STORE_PAGE + 500  # more than one page
    for _ in range(receipts):
        receive_stock(store, context, ReceiveStock(product.id, location.id, 1))
    stored = store.app.recorder.max_notification_id() or 0

    worker = PmsProcess("worker", settings).start()  # relay and projector
    try:
        position, on_hand, moves = _wait_for(settings.database_url, stored)
        assert (position, on_hand, moves) == (stored, receipts, receipts)
        # The backlog came from the store: a consumer that starts at new messages was made
        # after the events were stored.
        assert asyncio.run(_consumer_config(settings)) == (AckPolicy.ALL, DeliverPolicy.NEW)
        # New events now come as messages through the new consumer.
        last = receive_stock(store, context, ReceiveStock(product.id, location.id, 5)).position
        assert _wait_for(settings.database_url, last) == (last, receipts + 5, receipts + 1)
    finally:
        worker.stop()
    item: StockItem = store.app.repository.get(StockItem.create_id(product.id, location.id))
    assert item.on_hand == receipts + 5
