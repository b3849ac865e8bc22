"""The order timeline applies a run of order events in a few set-based statements and writes
the rows that applying them one at a time does, also when the run's events read the entries of
orders placed before it (histories generated through the real commands)."""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Sequence
from typing import Any, Self, cast

from histories import Shop
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from psycopg import AsyncConnection, AsyncCursor
from scratch import scratch_schema, scratch_store

from application.payments import settle_order_payment_status
from application.settings import Settings
from domain.errors import DomainError
from domain.orders import Order
from projections.base import Stamped
from projections.order_timeline import OrderTimelineProjection
from projections.registry import projection_groups
from workers.embedded import ServiceUrls
from workers.projector import decode

KINDS = [
    *["order"] * 3,
    *["lines", "confirm", "ship_some", "ship_all", "deliver", "cancel", "pay"] * 2,
    *["product", "receive", "settings", "refund"],
]
order_steps = st.tuples(
    st.sampled_from(KINDS), st.integers(0, 7), st.integers(0, 7), st.integers(1, 9)
)

BEFORE = [
    *[("settings", 0, 0, 3), ("product", 0, 0, 1), ("receive", 0, 0, 9), ("receive", 1, 0, 9)],
    *[("order", 0, 0, 1), ("order", 0, 0, 3), ("order", 0, 0, 2), ("lines", 1, 0, 1)],
]
"""Three orders (the second with changed lines) placed, with a tax rate, before the run."""

RUN = [
    *[("ship_some", 1, 0, 1), ("ship_some", 1, 1, 2), ("lines", 0, 1, 3), ("ship_some", 0, 0, 1)],
    *[("pay", 2, 0, 1), ("order", 0, 0, 1), ("lines", 0, 0, 2), ("cancel", 0, 0, 1)],
    ("ship_all", 3, 0, 1),
]
"""Steps that make sure the run ships orders of before it in parts (one whose lines changed
before it, one whose lines change in it), changes the lines of one of them, places an order,
changes its lines and cancels it, and changes a payment status."""


class Counted:
    """A cursor that keeps the statements it executes."""

    def __init__(self, cursor: AsyncCursor[Any]) -> None:
        self.cursor = cursor
        self.statements: list[Any] = []

    async def execute(self, query: Any, params: Any = None) -> Self:
        self.statements.append(query)
        await self.cursor.execute(query, params)
        return self

    async def fetchall(self) -> list[Any]:
        return await self.cursor.fetchall()


async def _one_by_one(connection: AsyncConnection[Any], events: Sequence[Stamped]) -> None:
    async with connection.cursor() as cursor:
        for event, info in events:
            await OrderTimelineProjection().apply(cursor, event, info)


async def _at_once(connection: AsyncConnection[Any], events: Sequence[Stamped]) -> list[Any]:
    async with connection.cursor() as cursor:
        counted = Counted(cursor)
        changes = await OrderTimelineProjection().apply_batch(cast(Any, counted), events)
        assert changes == []
        return counted.statements


async def _timeline(connection: AsyncConnection[Any]) -> list[tuple[Any, ...]]:
    cursor = await connection.execute(
        "SELECT order_id, position, at, actor, kind, text, data::text FROM order_timeline"
        " ORDER BY position"
    )
    return await cursor.fetchall()


@settings(
    max_examples=10,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@example(after=[])
@given(after=st.lists(order_steps, max_size=30))
async def test_a_run_of_order_events_equals_its_events_applied_one_by_one(
    servers: ServiceUrls, settings: Settings, after: list[Any]
) -> None:
    with scratch_store(servers, settings) as (chosen, store):
        shop = Shop(store)
        shop.seed()
        for steps in (BEFORE, RUN, after):
            if steps is RUN:
                split = [n.id for n in store.iter_notifications(0)][-1]
            for step in steps:
                shop.run(step)
            _settle_payments(shop)
        [group] = projection_groups()
        stamped = decode(group, store.app.mapper, list(store.iter_notifications(0)))
        events = [(e, i) for e, i in stamped if OrderTimelineProjection().handles(e)]
        earlier = [(e, i) for e, i in events if i.position <= split]
        run = [(e, i) for e, i in events if i.position > split]
        _assert_covers(earlier, run)
        async with (
            scratch_schema(chosen.database_url) as at_once,
            scratch_schema(chosen.database_url) as one_by_one,
        ):
            await _one_by_one(at_once, earlier)
            await _one_by_one(one_by_one, earlier)
            async with at_once.transaction(force_rollback=True):
                simple = [(e, i) for e, i in run if isinstance(e, Order.Placed | Order.Confirmed)]
                assert len(await _at_once(at_once, simple)) == 1  # no context to read
            statements = await _at_once(at_once, run)
            await _one_by_one(one_by_one, run)
            assert len(statements) == 3  # the two context queries and the insert
            assert await _timeline(at_once) == await _timeline(one_by_one)
            assert len(await _timeline(at_once)) == len(events)


def _settle_payments(shop: Shop) -> None:
    """What the payments process manager does: each order's payment status from its payments."""
    for order_id in shop.orders:
        with contextlib.suppress(DomainError):
            settle_order_payment_status(shop.store, shop.context, order_id)


def _assert_covers(earlier: Sequence[Stamped], run: Sequence[Stamped]) -> None:
    """The run places, confirms, changes lines, ships in parts, cancels and changes payment
    statuses, and has events that read the entries of orders placed before it."""
    kinds = {type(e).__name__ for e, _ in run}
    assert {"Placed", "LinesChanged", "ShipmentDispatched", "Cancelled"} <= kinds
    assert {"Confirmed", "PaymentStatusChanged"} <= kinds
    shipments = Counter(e.originator_id for e, _ in run if isinstance(e, Order.ShipmentDispatched))
    assert max(shipments.values()) >= 2
    placed_before = {e.originator_id for e, _ in earlier if isinstance(e, Order.Placed)}
    changed_before = {e.originator_id for e, _ in earlier if isinstance(e, Order.LinesChanged)}
    reading = {
        type(e).__name__
        for e, _ in run
        if isinstance(e, Order.LinesChanged | Order.ShipmentDispatched)
        and e.originator_id in placed_before
    }
    assert reading == {"LinesChanged", "ShipmentDispatched"}
    assert any(
        isinstance(e, Order.ShipmentDispatched) and e.originator_id in changed_before
        for e, _ in run
    )
