"""Sales analytics against an independent fold of the same events: per day, week and month
in the company's time zone, with filters, cancellations, changed lines and refunds."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg import AsyncConnection
from scratch import Stamped, project, scratch_schema

from application.settings import Settings
from domain.orders import Order, OrderLine
from domain.payments import Payment
from domain.values import Money
from projections.analytics_queries import SalesFilter, _bucket_starts, sales_analytics

ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata", "Pacific/Chatham"]
START = datetime(2026, 1, 1, tzinfo=UTC)
PRODUCTS = [UUID(int=n + 1) for n in range(3)]
CUSTOMERS = [UUID(int=n + 100) for n in range(2)]
LOCATIONS = [UUID(int=n + 200) for n in range(2)]


@pytest.fixture(scope="module")
async def connection(settings: Settings) -> AsyncIterator[AsyncConnection[Any]]:
    """A scratch schema with the group's tables."""
    async with scratch_schema(settings.database_url) as opened:
        yield opened


def line(product: int, quantity: int, price: int) -> OrderLine:
    """An order line of one of the test products."""
    return OrderLine(PRODUCTS[product], f"SKU-{product}", "Thing", quantity, Money(price, "EUR"))


# When an order is placed: day after START, and times of day near where zones change dates.
placed_times = st.builds(
    lambda day, hour, minute: START + timedelta(days=day, hours=hour, minutes=minute),
    st.integers(0, 79),
    st.sampled_from([0, 4, 9, 10, 11, 12, 13, 16, 19, 23]),
    st.integers(0, 59),
)
order_specs = st.tuples(
    placed_times,
    st.lists(
        st.tuples(st.integers(0, 2), st.integers(1, 4), st.integers(1, 5000)),
        min_size=1,
        max_size=3,
        unique_by=lambda spec: spec[0],
    ),
    st.integers(0, 1),  # customer
    st.integers(0, 1),  # location
    st.sampled_from(["keep", "cancel", "change", "refund"]),
    st.integers(0, 2000),  # tax rate in basis points
)


def history(specs: Sequence[Any]) -> tuple[Stamped, list[Order], list[tuple[Order, int, datetime]]]:
    """Orders (and refunds) from `specs`, each event with the time it happened."""
    events: Stamped = []
    orders: list[Order] = []
    refunds: list[tuple[Order, int, datetime]] = []
    for at, lines, customer, location, fate, rate in specs:
        order = Order.place(
            order_id=uuid4(),
            order_number=f"ORD-{len(orders):06d}",
            customer_id=CUSTOMERS[customer],
            location_id=LOCATIONS[location],
            currency="EUR",
            lines=[line(*spec) for spec in lines],
            shipping_address="1 Main St",
            tax_rate_basis_points=rate,
        )
        if fate == "cancel":
            order.cancel("changed mind")
        elif fate == "change":
            order.change_lines([line(spec[0], spec[1] + 1, spec[2]) for spec in lines])
        events += [
            (event, at + timedelta(minutes=n)) for n, event in enumerate(order.collect_events())
        ]
        orders.append(order)
        if fate == "refund":
            payment = Payment.start(
                payment_id=uuid4(),
                order_id=order.id,
                amount=order.total,
                method="card",
                provider="manual",
            )
            payment.authorize()
            payment.capture()
            amount = max(order.total.amount // 3, 1)
            payment.refund(f"r-{len(refunds)}", Money(amount, "EUR"), "goodwill")
            later = at + timedelta(days=at.day % 9, hours=at.minute % 5)
            events += [(event, later) for event in payment.collect_events()]
            refunds.append((order, amount, later))
    return sorted(events, key=lambda pair: pair[1]), orders, refunds


def bucket_of(at: datetime, zone: str, group_by: str) -> date:
    """The first day of the bucket `at` falls in, in `zone`."""
    day = at.astimezone(ZoneInfo(zone)).date()
    if group_by == "week":
        return day - timedelta(days=day.weekday())
    if group_by == "month":
        return day.replace(day=1)
    return day


def fold(
    orders: list[Order],
    refunds: list[tuple[Order, int, datetime]],
    placed: dict[UUID, datetime],
    where: SalesFilter,
    zone: str,
    group_by: str,
) -> dict[date, list[int]]:
    """Orders, units, revenue, tax, refunds per bucket, straight from the aggregates."""
    figures: dict[date, list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0])

    def wanted(order: Order, at: datetime) -> bool:
        local = at.astimezone(ZoneInfo(zone)).date()
        return (
            where.start <= local <= where.end
            and where.customer_id in (None, order.customer_id)
            and where.location_id in (None, order.location_id)
        )

    for order in orders:
        at = placed[order.id]
        if order.status == "cancelled" or not wanted(order, at):
            continue
        lines = [ln for ln in order.lines if where.product_id in (None, ln.product_id)]
        if not lines:
            continue
        row = figures[bucket_of(at, zone, group_by)]
        row[0] += 1
        row[1] += sum(ln.quantity for ln in lines)
        row[2] += sum(ln.line_total.amount for ln in lines)
        if where.product_id is None:
            row[3] += order.tax.amount
    for order, amount, at in refunds:
        if where.product_id is None and wanted(order, at):
            figures[bucket_of(at, zone, group_by)][4] += amount
    return figures


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    specs=st.lists(order_specs, min_size=1, max_size=12),
    zone=st.sampled_from(ZONES),
    group_by=st.sampled_from(["day", "week", "month"]),
    window=st.tuples(st.integers(0, 70), st.integers(0, 40)),
    filters=st.tuples(
        st.none() | st.integers(0, 2), st.none() | st.integers(0, 1), st.none() | st.integers(0, 1)
    ),
)
async def test_sales_per_period_are_the_fold_of_the_events(
    connection: AsyncConnection[Any],
    specs: list[Any],
    zone: str,
    group_by: str,
    window: tuple[int, int],
    filters: tuple[int | None, int | None, int | None],
) -> None:
    events, orders, refunds = history(specs)
    placed = {event.originator_id: at for event, at in events if isinstance(event, Order.Placed)}
    start = START.date() + timedelta(days=window[0])
    product, customer, location = filters
    where = SalesFilter(
        start,
        start + timedelta(days=window[1]),
        location_id=None if location is None else LOCATIONS[location],
        product_id=None if product is None else PRODUCTS[product],
        customer_id=None if customer is None else CUSTOMERS[customer],
    )
    async with connection.transaction(force_rollback=True):
        await project(connection, events)
        answer = await sales_analytics(
            connection, where, group_by, tz=zone, currency="EUR", position=7
        )
    expected = fold(orders, refunds, placed, where, zone, group_by)
    starts = _bucket_starts(where.start, where.end, group_by)
    assert [b.start for b in answer.buckets] == [max(s, where.start) for s in starts]
    got = {
        s: [
            b.orders,
            b.units,
            b.revenue.amount,
            b.tax.amount if product is None else 0,
            b.refunds.amount,
        ]
        for s, b in zip(starts, answer.buckets, strict=True)
    }
    assert got == {s: expected.get(s, [0, 0, 0, 0, 0]) for s in starts}
    for b in answer.buckets:
        assert b.net.amount == b.revenue.amount - b.refunds.amount
    assert answer.totals.revenue.amount == sum(b.revenue.amount for b in answer.buckets)
    assert answer.totals.orders == sum(b.orders for b in answer.buckets)
    assert (answer.position, answer.timezone) == (7, zone)


def test_periods_are_named_by_day_iso_week_and_month() -> None:
    assert _bucket_starts(date(2026, 12, 30), date(2027, 1, 2), "week") == [date(2026, 12, 28)]
    assert _bucket_starts(date(2026, 11, 30), date(2027, 2, 1), "month") == [
        date(2026, 11, 1),
        date(2026, 12, 1),
        date(2027, 1, 1),
        date(2027, 2, 1),
    ]
