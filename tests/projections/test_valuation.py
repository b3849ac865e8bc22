"""Moving-average valuation against a fold of the stock events, and the figures built on it:
inventory metrics, the valuation report, cost of goods sold in sales reports."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg import AsyncConnection
from scratch import Stamped, project, scratch_schema

from application.settings import Settings
from domain.catalogue import Product
from domain.errors import DomainError
from domain.inventory import StockItem
from domain.values import Money
from projections.report_queries import ReportParams, report_page
from projections.reports import REPORTS
from projections.valuation import ProductCostsProjection, next_cost, rounded_ratio
from projections.valuation_queries import inventory_metrics

LOCATIONS = [UUID(int=n + 200) for n in range(2)]
AT = datetime(2026, 3, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
async def connection(settings: Settings) -> AsyncIterator[AsyncConnection[Any]]:
    """A scratch schema with the group's tables."""
    async with scratch_schema(settings.database_url) as opened:
        yield opened


moves = st.lists(
    st.tuples(
        st.sampled_from(["receive", "receive", "adjust", "issue", "transfer", "count"]),
        st.integers(0, 1),  # product
        st.integers(0, 1),  # location
        st.integers(-6, 12),  # quantity (or count)
        st.integers(0, 999),  # receipt unit cost
    ),
    min_size=1,
    max_size=30,
)


class Fold:
    """Units and value per product, folded from the movements as the convention says."""

    def __init__(self, catalogue_costs: list[int]) -> None:
        self.units = [0, 0]
        self.value = [0, 0]
        self.average = list(catalogue_costs)

    def move(self, product: int, quantity: int, receipt_cost: int | None = None) -> None:
        """Units in (+) or out (−), at the receipt's cost or the average."""
        units, value = self.units[product], self.value[product]
        if receipt_cost is not None:
            value += quantity * receipt_cost
        elif quantity < 0:
            value -= (2 * value * -quantity + units) // (2 * units)  # half up
        else:
            value += quantity * self.average[product]
        units += quantity
        if units == 0:
            value = 0
        else:
            self.average[product] = (2 * value + units) // (2 * units)
        self.units[product], self.value[product] = units, value


def history(specs: list[Any]) -> tuple[Stamped, Fold, list[StockItem]]:
    """Products, then movements the domain accepts, with the fold beside them."""
    products = [
        Product.create(sku=f"V-{n}", name="V", price=Money(2000, "EUR"), cost=Money(300 + n, "EUR"))
        for n in range(2)
    ]
    events = [event for product in products for event in product.collect_events()]
    fold = Fold([300, 301])
    items = {
        (p, loc): StockItem.open(products[p].id, LOCATIONS[loc])
        for p in range(2)
        for loc in range(2)
    }
    events += [event for item in items.values() for event in item.collect_events()]
    for kind, p, loc, quantity, cost in specs:
        item = items[(p, loc)]
        with contextlib.suppress(DomainError):
            if kind == "receive" and quantity > 0:
                item.receive(quantity, Money(cost, "EUR"), document=None)
                fold.move(p, quantity, cost)
            elif kind == "adjust" and quantity:
                item.adjust(quantity, reason="test", document=None)
                fold.move(p, quantity)
            elif kind == "issue" and quantity > 0:
                item.reserve(quantity, document="order:x")
                item.issue(quantity, document="order:x")
                fold.move(p, -quantity)
            elif kind == "transfer" and quantity > 0:
                other = items[(p, 1 - loc)]
                item.transfer_out(quantity, to_location_id=LOCATIONS[1 - loc], document="t")
                other.transfer_in(quantity, from_location_id=LOCATIONS[loc], document="t")
                events += list(item.collect_events()) + list(other.collect_events())
            elif kind == "count" and quantity >= 0:
                before = item.on_hand
                item.count(quantity, document=None)
                if quantity != before:
                    fold.move(p, quantity - before)
        events += list(item.collect_events())
    stamped = [(event, AT + timedelta(seconds=n)) for n, event in enumerate(events)]
    return stamped, fold, list(items.values())


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(specs=moves)
async def test_value_on_hand_is_the_fold_of_the_movements(
    connection: AsyncConnection[Any], specs: list[Any]
) -> None:
    events, fold, items = history(specs)
    async with connection.transaction(force_rollback=True):
        await project(connection, events)
        cursor = await connection.execute(
            "SELECT p.sku, c.units, c.value, c.unit_cost FROM product_costs c"
            " JOIN products p ON p.id = c.product_id ORDER BY p.sku"
        )
        costs = {sku: (units, value, cost) for sku, units, value, cost in await cursor.fetchall()}
        cursor = await connection.execute(
            "SELECT DISTINCT ON (p.sku) p.sku, h.unit_cost FROM product_cost_history h"
            " JOIN products p ON p.id = h.product_id ORDER BY p.sku, h.position DESC"
        )
        latest = dict(await cursor.fetchall())
        metrics = await inventory_metrics(connection, "EUR", position=3)
        page = await report_page(
            connection, REPORTS["valuation"], ReportParams(), cursor=None, limit=500, position=3
        )
    for n in range(2):
        if fold.units[n] or fold.value[n] or f"V-{n}" in costs:
            assert costs[f"V-{n}"] == (fold.units[n], fold.value[n], fold.average[n])
    assert latest == {sku: cost for sku, (_, _, cost) in costs.items()}
    assert metrics.total_units == sum(item.on_hand for item in items) == sum(fold.units)
    rows = page.items
    assert sum(row["onHand"] for row in rows) == sum(fold.units)
    for n in range(2):
        values = [row["value"].amount for row in rows if row["sku"] == f"V-{n}"]
        # Each location's share is rounded: together within a unit per location of the total.
        assert abs(sum(values) - fold.value[n]) <= len(values)
    assert metrics.total_value.amount == sum(row["value"].amount for row in rows)


async def test_costs_kept_before_the_history_start_it_when_migrated(
    connection: AsyncConnection[Any],
) -> None:
    events, fold, _ = history([("receive", 0, 0, 4, 300), ("receive", 0, 0, 4, 500)])
    async with connection.transaction(force_rollback=True):
        await project(connection, events)
        cursor = await connection.execute("SELECT position FROM product_cost_history")
        assert len(await cursor.fetchall()) == 2  # each receipt moved the average
        await connection.execute("DELETE FROM product_cost_history")  # as before it was kept
        for _ in range(2):  # migrating again adds nothing
            await connection.execute(ProductCostsProjection.ddl)
        cursor = await connection.execute("SELECT position, unit_cost FROM product_cost_history")
        assert await cursor.fetchall() == [(0, fold.average[0])]


@given(
    units=st.integers(0, 10**6),
    value=st.integers(0, 10**9),
    quantity=st.integers(-(10**6), 10**6),
    cost=st.none() | st.integers(0, 10**5),
)
def test_the_last_unit_out_takes_exactly_what_is_left(
    units: int, value: int, quantity: int, cost: int | None
) -> None:
    if units == 0:
        value = 0
    if quantity < 0:  # never more out than on hand, and receipts only bring units in
        quantity, cost = max(quantity, -units), None
    average = rounded_ratio(value, units) if units else 42
    new_units, new_value, new_average = next_cost(units, value, average, quantity, cost)
    assert new_units == units + quantity
    assert new_value >= 0
    if new_units == 0:
        assert (new_value, new_average) == (0, average)
    if cost is None and quantity < 0:
        assert new_value <= value
