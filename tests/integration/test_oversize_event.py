"""An event too big for a NATS message does not stop the relay: it is left to the store, and
the projector, told of it by the next message, reads it from there."""

from __future__ import annotations

import time
from uuid import uuid4

import psycopg
from support import PmsProcess

from application.catalogue import CreateProduct, create_product
from application.context import CommandContext
from application.settings import Settings
from application.store import EventStore
from domain.uniqueness import UniqueKey
from domain.values import Money


def _projected(database_url: str) -> tuple[int, int]:
    with psycopg.connect(database_url) as connection:
        row = connection.execute(
            "SELECT (SELECT position FROM read.projection_positions WHERE group_name = 'main'),"
            " (SELECT count(*) FROM read.products)"
        ).fetchone()
    assert row is not None
    return int(row[0] or 0), int(row[1])


def _wait_until_projected(settings: Settings, worker: PmsProcess, last: int) -> tuple[int, int]:
    deadline = time.monotonic() + 60
    while (state := _projected(settings.database_url))[0] < last:
        assert worker.process is not None
        assert worker.process.poll() is None, "the worker died"
        assert time.monotonic() < deadline, f"projected up to {state[0]} of {last}"
        time.sleep(0.1)
    return state


def test_an_event_bigger_than_a_nats_message_is_read_from_the_store(
    isolated: tuple[Settings, EventStore],
) -> None:
    settings, store = isolated
    context = CommandContext.system("test")

    def product(sku: str) -> int:
        create_product(store, context, CreateProduct(sku=sku, name="A", price=Money(1, "EUR")))
        return store.app.recorder.max_notification_id() or 0

    worker = PmsProcess("worker", settings).start()  # relay and projector
    try:
        # Following messages by now (a projector that starts behind reads the store first).
        _wait_until_projected(settings, worker, product("BIG-1"))
        # No command makes an event this big; any event kind no projection reads will do.
        store.app.save(UniqueKey(kind="test", key="k" * 1_200_000, owner_id=uuid4()))
        state = _wait_until_projected(settings, worker, product("BIG-2"))
        assert state[1] == 2  # the product after the big event was projected
        # The newest event too big: no message follows it, the projector reads it when idle.
        store.app.save(UniqueKey(kind="test", key="q" * 1_200_000, owner_id=uuid4()))
        _wait_until_projected(settings, worker, store.app.recorder.max_notification_id() or 0)
    finally:
        worker.stop()
