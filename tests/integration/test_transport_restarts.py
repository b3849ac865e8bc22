"""Killing and restarting the relay and the projector mid-stream loses and duplicates nothing."""

from __future__ import annotations

import asyncio
import contextlib
import random
import threading
import time
from uuid import UUID

import nats
import psycopg
from support import PmsProcess

from application.catalogue import CreateProduct, create_product
from application.context import CommandContext
from application.inventory import AdjustStock, ReceiveStock, adjust_stock, receive_stock
from application.locations import CreateLocation, create_location
from application.settings import Settings
from application.store import EventStore
from domain.errors import InsufficientStock
from domain.inventory import StockItem
from domain.values import Money


def _commands(
    store: EventStore, items: list[tuple[UUID, UUID]], count: int, done: threading.Event
) -> None:
    context = CommandContext.system("test")
    rng = random.Random(7)
    for _ in range(count):
        product_id, location_id = rng.choice(items)
        if rng.random() < 0.7:
            receive_stock(store, context, ReceiveStock(product_id, location_id, rng.randint(1, 9)))
        else:
            # Some removals exceed what is on hand and are refused: that is part of the mix.
            with contextlib.suppress(InsufficientStock):
                adjust_stock(
                    store,
                    context,
                    AdjustStock(product_id, location_id, -rng.randint(1, 5), reason="count"),
                )
    done.set()


def _read_model(database_url: str) -> dict[UUID, int]:
    with psycopg.connect(database_url) as connection:
        rows = connection.execute("SELECT stock_item_id, on_hand FROM read.stock_levels").fetchall()
    return {row[0]: row[1] for row in rows}


def _positions(database_url: str) -> tuple[int, int]:
    """The projector's tracked position and the relay's published one."""
    with psycopg.connect(database_url) as connection:
        projected = connection.execute(
            "SELECT position FROM read.projection_positions WHERE group_name = 'main'"
        ).fetchone()
        published = connection.execute(
            "SELECT position FROM public.pms_relay_position WHERE name = 'relay'"
        ).fetchone()
    return (int(projected[0]) if projected else 0, int(published[0]) if published else 0)


async def _stream_message_count(nats_url: str, stream: str) -> int:
    client = await nats.connect(nats_url)
    try:
        info = await client.jetstream().stream_info(stream)
        return int(info.state.messages)
    finally:
        await client.close()


def test_killed_relay_and_projector_lose_and_duplicate_nothing(
    isolated: tuple[Settings, EventStore],
) -> None:
    settings, store = isolated
    context = CommandContext.system("test")
    price = Money(500, "EUR")
    products = [
        create_product(store, context, CreateProduct(sku=f"R-{i}", name="P", price=price)).value.id
        for i in range(3)
    ]
    locations = [
        create_location(store, context, CreateLocation(code=f"L{i}", name="L")).value.id
        for i in range(2)
    ]
    items = [(p, loc) for p in products for loc in locations]
    relay = PmsProcess("relay", settings).start()
    projector = PmsProcess("projector", settings).start()
    done = threading.Event()
    writer = threading.Thread(target=_commands, args=(store, items, 600, done))
    writer.start()
    try:
        for round_ in range(3):
            time.sleep(0.6)
            relay.kill()
            relay = PmsProcess("relay", settings).start()
            time.sleep(0.4)
            projector.kill() if round_ % 2 == 0 else projector.stop()
            projector = PmsProcess("projector", settings).start()
        writer.join(120)
        assert done.is_set()
        final = store.max_position()
        deadline = time.monotonic() + 60
        # The projector reads what the stream lacks from the store, so it may be done first.
        while min(_positions(settings.database_url)) < final:
            assert time.monotonic() < deadline, "projector or relay did not catch up"
            time.sleep(0.1)
    finally:
        relay.stop()
        projector.stop()

    folded = {}
    for product_id, location_id in items:
        item_id = StockItem.create_id(product_id, location_id)
        item: StockItem = store.app.repository.get(item_id)
        folded[item_id] = item.on_hand
    assert _read_model(settings.database_url) == folded
    # Every stored event went to the stream exactly once (a re-published one is deduplicated).
    stored = sum(1 for _ in store.iter_notifications(0))
    assert asyncio.run(_stream_message_count(settings.nats_url, settings.stream_name)) == stored
