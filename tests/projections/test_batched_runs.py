"""Runs of stock and order events applied set-based write the rows and announce the changes
that applying the same events one at a time does, for any history (generated through the real
commands)."""

from __future__ import annotations

import ast
import inspect
import json
import re
import sys
from types import ModuleType
from typing import Any

import pytest
from eventsourcing.persistence import StoredEvent
from histories import Shop, steps
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg import AsyncConnection, sql
from psycopg.rows import dict_row
from scratch import scratch_schema, scratch_store

from application.recorder import StoredNotification, XidOrderedRecorder
from application.settings import Settings
from application.store import EventStore
from domain.inventory import StockItem
from domain.orders import Order
from domain.payments import Payment
from projections.base import BatchProjection, Change
from projections.registry import projection_groups
from workers.embedded import ServiceUrls
from workers.projector import (
    GroupProjector,
    ProjectionFailed,
    RunFailed,
    apply_events,
    apply_notifications,
    decode,
)
from workers.rebuild import Rebuild, RebuildFailed


async def _apply(
    connection: AsyncConnection[Any],
    store: EventStore,
    chunks: list[list[StoredNotification]],
    *,
    announce: bool = True,
) -> list[Change]:
    [group] = projection_groups()
    changes: list[Change] = []
    async with connection.cursor() as cursor:
        for chunk in chunks:
            events = decode(group, store.app.mapper, chunk)
            changes += await apply_events(group, cursor, events, announce=announce)
    await connection.commit()
    return changes


async def _rows(connection: AsyncConnection[Any]) -> dict[str, list[str]]:
    [group] = projection_groups()
    rows: dict[str, list[str]] = {}
    async with connection.cursor(row_factory=dict_row) as cursor:
        for table in group.tables():
            await cursor.execute(sql.SQL("SELECT * FROM {}").format(sql.Identifier(table)))
            rows[table] = sorted(repr(sorted(row.items())) for row in await cursor.fetchall())
    return rows


def _longest_stock_run(store: EventStore) -> int:
    longest = current = 0
    for notification in store.iter_notifications(0):
        event = store.app.mapper.to_domain_event(notification)
        current = current + 1 if isinstance(event, StockItem.Event) else 0
        longest = max(longest, current)
    return longest


def _append_after(store: EventStore, last: StoredNotification, topic: str, state: bytes) -> int:
    """Store an event as the next version of `last`'s aggregate, bypassing the domain (as a
    bug or an old release might have); its position."""
    recorder = store.app.recorder
    assert isinstance(recorder, XidOrderedRecorder)
    [position] = recorder.insert_events(
        [
            StoredEvent(
                originator_id=last.originator_id,
                originator_version=last.originator_version + 1,
                topic=topic,
                state=state,
            )
        ],
        metadata={"actor": "system:test"},
    ) or [0]
    return position


async def _fails_as_a_run_then_alone(
    connection: AsyncConnection[Any], store: EventStore, notifications: list[StoredNotification]
) -> ProjectionFailed:
    """Applied with runs, the events fail as a run (the caller rolls back and applies them one
    at a time); applied one at a time, the failure names the event."""
    with pytest.raises(RunFailed):
        await _apply(connection, store, [notifications])
    await connection.rollback()
    with pytest.raises(ProjectionFailed) as failed:
        async with connection.cursor() as cursor:
            await apply_notifications(
                projection_groups()[0], store.app.mapper, cursor, notifications, runs=False
            )
    await connection.rollback()
    return failed.value


RUN = [("product", 0, 0, 2), ("receive", 0, 0, 3), ("adjust", 0, 0, 2), ("count", 0, 0, 1)]
"""Steps that make sure every history has a run in which a new product is stocked."""

ORDERS_BEFORE = [
    *[("settings", 0, 0, 3), ("receive", 1, 0, 9)],
    *[("order", 0, 0, 1), ("order", 0, 0, 3), ("order", 0, 0, 2), ("lines", 1, 0, 1)],
    ("pay", 2, 0, 1),
]
ORDERS_AFTER = [
    *[("ship_some", 1, 0, 1), ("ship_some", 1, 1, 2), ("lines", 0, 1, 3), ("ship_some", 0, 0, 1)],
    *[("receive", 0, 0, 4), ("order", 0, 0, 1), ("lines", 0, 0, 2), ("cancel", 0, 0, 1)],
    *[("ship_all", 3, 0, 1), ("confirm", 2, 0, 1), ("deliver", 2, 0, 1)],
    *[("refund", 0, 0, 3), ("pay", 1, 0, 1), ("refund", 0, 0, 2), ("refund", 0, 0, 1)],
]
"""Orders placed (one with its lines changed, with a tax rate) in the first part of a history,
then shipped in parts, changed, cancelled and delivered in the second, among receipts that
move their products' costs: runs of the second part continue orders of the first. A payment
captured in the first part is refunded in the second; another is captured and refunded twice
in the second."""


def test_stock_new_products_and_orders_are_applied_in_runs() -> None:
    [group] = projection_groups()
    batched = {p.name for p in group.projections if isinstance(p, BatchProjection)}
    assert batched == {
        "products",
        "stock_levels",
        "stock_ledger",
        "low_stock_alerts",
        "product_costs",
        "orders",
        "order_timeline",
        "customers",
        "sales",
        "payments",
    }
    for event_type in (
        *(Order.Placed, Order.Confirmed, Order.ShipmentDispatched, Order.Cancelled),
        *(Payment.Created, Payment.Authorized, Payment.Captured, Payment.Refunded),
    ):
        assert group.dispatch(event_type.__new__(event_type)).batched


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(history=st.lists(steps, min_size=30, max_size=80))
async def test_a_run_applied_at_once_equals_its_events_applied_one_by_one(
    servers: ServiceUrls, settings: Settings, history: list[Any]
) -> None:
    with scratch_store(servers, settings) as (chosen, store):
        shop = Shop(store)
        shop.seed()
        for step in [*RUN, *ORDERS_BEFORE]:
            shop.run(step)
        first = len(list(store.iter_notifications(0)))
        for step in [*ORDERS_AFTER, *history]:
            shop.run(step)
        notifications = list(store.iter_notifications(0))
        chunks = [notifications[:first], notifications[first:]]
        kinds = [{type(store.app.mapper.to_domain_event(n)) for n in chunk} for chunk in chunks]
        assert Payment.Captured in kinds[0]
        assert {Payment.Created, Payment.Refunded} <= kinds[1]
        async with (
            scratch_schema(chosen.database_url) as at_once,
            scratch_schema(chosen.database_url) as one_by_one,
            scratch_schema(chosen.database_url) as unannounced,
        ):
            together = await _apply(at_once, store, chunks)
            alone = await _apply(one_by_one, store, [[n] for n in notifications])
            assert together == alone
            assert await _rows(at_once) == await _rows(one_by_one)
            # As a rebuild applies them: nobody publishes the changes, the rows are the same.
            await _apply(unannounced, store, chunks, announce=False)
            assert await _rows(unannounced) == await _rows(one_by_one)
        assert _longest_stock_run(store) >= len(RUN)


async def test_a_run_that_crosses_the_reorder_level_twice_announces_both_falls(
    servers: ServiceUrls, settings: Settings
) -> None:
    """Within one run stock falls to the reorder level, recovers and falls again: two alerts,
    each at its own event with the units available then, as applying one by one gives."""
    with scratch_store(servers, settings) as (chosen, store):
        shop = Shop(store)
        shop.seed()  # a product with reorder level 1, a location
        for quantity in (3, -2, 3, -3):  # available 3, 1 (low), 4, 1 (low again)
            shop.run(("adjust", 0, 0, quantity + 5))
        notifications = list(store.iter_notifications(0))
        events = [store.app.mapper.to_domain_event(n) for n in notifications]
        adjusted = [n.id for n, e in zip(notifications, events, strict=True)
                    if isinstance(e, StockItem.Adjusted)]  # fmt: skip
        assert len(adjusted) == 4
        assert _longest_stock_run(store) == 5  # opened + four adjustments
        async with scratch_schema(chosen.database_url) as connection:
            changes = await _apply(connection, store, [notifications])
            cursor = await connection.execute("SELECT low FROM low_stock_state")
            assert await cursor.fetchall() == [(True,)]
    alerts = [c for c in changes if c.topic == "alerts"]
    assert [(a.position, a.data["available"]) for a in alerts] == [
        (adjusted[1], 1),
        (adjusted[3], 1),
    ]
    updates = [c.data["available"] for c in changes if c.event == "inventory_update"]
    assert updates == [0, 3, 1, 4, 1]


async def test_a_poison_event_in_a_run_stops_the_group_at_that_event(
    servers: ServiceUrls, settings: Settings
) -> None:
    with scratch_store(servers, settings) as (chosen, store):
        shop = Shop(store)
        shop.seed()
        for quantity in (3, 2):
            shop.run(("adjust", 0, 0, quantity + 5))
        last = list(store.iter_notifications(0))[-1]
        state = json.loads(last.state)
        state["quantity"] = "three"  # decodes, but no projection can add it up
        poison = _append_after(store, last, last.topic, json.dumps(state).encode())
        notifications = list(store.iter_notifications(0))
        assert _longest_stock_run(store) == 4
        async with scratch_schema(chosen.database_url) as connection:
            failed = await _fails_as_a_run_then_alone(connection, store, notifications)
            # The projector does both on its own, and stops at the poison event.
            projector = GroupProjector(projection_groups()[0], store, store.app.mapper)
            await projector.ensure_tracking(connection)
            with pytest.raises(ProjectionFailed) as stopped:
                await projector.apply_batch(connection, await projector.stored(0))
        # So does a rebuild.
        with pytest.raises(RebuildFailed, match=f"position {poison}"):
            await Rebuild(projection_groups()[0], store, chosen.database_url).run()
    assert failed.position == stopped.value.position == poison
    assert "TypeError" in failed.error


async def test_an_event_applied_ahead_of_a_run_that_fails_fails_the_run(
    servers: ServiceUrls, settings: Settings
) -> None:
    """A customer event amid stock movements commutes with them and is applied ahead of the
    run; when it fails, the batch is applied again one event at a time, which names it."""
    with scratch_store(servers, settings) as (chosen, store):
        shop = Shop(store)
        shop.seed()  # location, product, customer
        customer = next(n for n in store.iter_notifications(0) if "Customer" in n.topic)
        for quantity in (3, 2):
            shop.run(("adjust", 0, 0, quantity + 5))
        # Registered again: the customers projection cannot insert the same customer twice.
        poison = _append_after(store, customer, customer.topic, customer.state)
        # A rebuild stops at it too, when it is alone in a page.
        with pytest.raises(RebuildFailed, match=f"position {poison}"):
            await Rebuild(projection_groups()[0], store, chosen.database_url, page=1).run()
        shop.run(("adjust", 0, 0, 9))
        notifications = list(store.iter_notifications(0))
        [group] = projection_groups()
        assert group.dispatch(store.app.mapper.to_domain_event(customer)).commutes(
            {"products", "stock_levels"}, {"stock_levels", "stock_moves", "product_costs"}
        )
        async with scratch_schema(chosen.database_url) as connection:
            failed = await _fails_as_a_run_then_alone(connection, store, notifications)
            # So does the projector, when it is alone in a batch.
            projector = GroupProjector(group, store, store.app.mapper)
            await projector.ensure_tracking(connection)
            stored = await projector.stored(0)
            await projector.apply_batch(
                connection, [i for i in stored if i.notification.id < poison]
            )
            with pytest.raises(ProjectionFailed) as stopped:
                await projector.apply_batch(
                    connection, [i for i in stored if i.notification.id == poison]
                )
    assert failed.position == stopped.value.position == poison


def test_each_projection_declares_the_tables_it_reads() -> None:
    """Whether an event may go ahead of a run rests on these declarations: every table of the
    group that a string in a projection's module names (its SQL, whatever the keyword, case or
    formatting) is its own or declared read, and it reads only tables of projections before
    it."""
    [group] = projection_groups()
    known = set(group.tables())
    allowed: dict[str, set[str]] = {}
    earlier: set[str] = set()
    for projection in group.projections:
        assert set(projection.reads) <= earlier, projection.name
        earlier |= set(projection.tables)
        module = type(projection).__module__
        allowed.setdefault(module, set()).update(projection.tables, projection.reads)
    for module, tables in allowed.items():
        assert _tables_named(sys.modules[module], known) <= tables, module


def _tables_named(module: ModuleType, known: set[str]) -> set[str]:
    """The known table names in the module's string constants, docstrings aside."""
    tree = ast.parse(inspect.getsource(module))
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
    }
    return {
        word
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
        if id(node) not in docstrings
        for word in re.findall(r"[a-z_]+", node.value.lower())
        if word in known
    }


async def test_a_rebuild_stops_at_an_event_it_cannot_decode(
    servers: ServiceUrls, settings: Settings
) -> None:
    """The rebuild decodes pages in its reading thread: an event whose class no longer exists
    still stops it at that event, and the rebuild records where."""
    with scratch_store(servers, settings) as (chosen, store):
        shop = Shop(store)
        shop.seed()
        for quantity in (3, 2, 4):
            shop.run(("adjust", 0, 0, quantity + 5))
        last = list(store.iter_notifications(0))[-1]
        unknown = _append_after(store, last, "domain.inventory:StockItem.Vanished", last.state)
        rebuild = Rebuild(projection_groups()[0], store, chosen.database_url, page=3)
        with pytest.raises(RebuildFailed, match=f"position {unknown}"):
            await rebuild.run()
        assert 0 < rebuild.done < len(list(store.iter_notifications(0)))
        async with await AsyncConnection.connect(chosen.database_url) as connection:
            cursor = await connection.execute(
                "SELECT state, failed_position FROM read_next.projection_positions"
            )
            assert await cursor.fetchall() == [("failed", unknown)]
