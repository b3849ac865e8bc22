"""Whatever the domain accepts, the read models can write: extreme but valid events (the largest
amounts and quantities, the longest texts) go through the group's projector code into the
real PostgreSQL tables, in runs and one at a time, without stopping the group (a poison
event), and the figures built on them come out exact."""

from __future__ import annotations

import random
import secrets
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest
from psycopg import AsyncConnection, sql
from scratch import scratch_schema

from application.settings import Settings
from domain.catalogue import MAX_CATEGORY_LENGTH, Product
from domain.customers import Customer
from domain.errors import InvalidValue
from domain.inventory import StockItem
from domain.orders import Order, OrderLine
from domain.values import MAX_AMOUNT, MAX_QUANTITY, Money
from projections.analytics_queries import SalesFilter, sales_analytics
from projections.base import EventInfo
from projections.registry import projection_groups
from projections.report_queries import ReportParams, report_csv
from projections.reports import REPORTS
from projections.valuation_queries import inventory_value
from workers.migrate import group_ddl
from workers.projector import apply_events

BIGINT = 2**63 - 1
LOCATION = UUID(int=300)
AT = datetime(2026, 3, 1, tzinfo=UTC)
runs_or_one_at_a_time = pytest.mark.parametrize("runs", [True, False], ids=["runs", "one-by-one"])


@pytest.fixture(scope="module")
async def connection(settings: Settings) -> AsyncIterator[AsyncConnection[Any]]:
    """A scratch schema with the group's tables."""
    async with scratch_schema(settings.database_url) as opened:
        yield opened


async def _project(connection: AsyncConnection[Any], events: list[Any], *, runs: bool) -> None:
    """Apply the events as the projector does (a poison event raises ProjectionFailed)."""
    [group] = projection_groups()
    stamped = [
        (event, EventInfo(n, AT + timedelta(seconds=n), {"actor": "user:test"}))
        for n, event in enumerate(events, start=1)
    ]
    async with connection.cursor() as cursor:
        await apply_events(group, cursor, stamped, runs=runs, announce=False)


async def _csv(connection: AsyncConnection[Any], report: str) -> list[list[str]]:
    chunks = [
        chunk
        async for chunk in report_csv(connection, REPORTS[report], ReportParams(currency="EUR"))
    ]
    return [line.split(",") for line in b"".join(chunks).decode().splitlines()]


def _product(sku: str, price: int, cost: int, **fields: Any) -> Product:
    return Product.create(
        sku=sku, name=sku, price=Money(price, "EUR"), cost=Money(cost, "EUR"), **fields
    )


def _events(*aggregates: Any) -> list[Any]:
    return [event for aggregate in aggregates for event in aggregate.collect_events()]


@runs_or_one_at_a_time
async def test_stock_worth_more_than_a_bigint_is_valued_exactly(
    connection: AsyncConnection[Any], runs: bool
) -> None:
    # The largest receipt value the domain accepts, then as many units as a movement may add,
    # valued at that average: 10**24 and more, from two valid commands.
    product = _product("BIG-1", MAX_AMOUNT, MAX_AMOUNT)
    item = StockItem.open(product.id, LOCATION)
    item.receive(1, Money(MAX_AMOUNT, "EUR"), document="GRN-1")
    item.adjust(MAX_QUANTITY, reason="found", document=None)
    value = MAX_AMOUNT * (MAX_QUANTITY + 1)
    assert value > BIGINT
    async with connection.transaction(force_rollback=True):
        await _project(connection, _events(product, item), runs=runs)
        cursor = await connection.execute("SELECT units, value, unit_cost FROM product_costs")
        assert await cursor.fetchall() == [(MAX_QUANTITY + 1, value, MAX_AMOUNT)]
        assert await inventory_value(connection, "EUR") == value
        [header, row] = await _csv(connection, "valuation")
        assert row[header.index("value")] == f"{value // 100}.{value % 100:02d}"
        # Every unit out again: the value goes back to nothing, exactly.
        item.adjust(-MAX_QUANTITY, reason="write-off", document=None)
        item.adjust(-1, reason="write-off", document=None)
        await _project(connection, _events(item), runs=runs)
        cursor = await connection.execute("SELECT units, value, unit_cost FROM product_costs")
        assert await cursor.fetchall() == [(0, 0, MAX_AMOUNT)]


@runs_or_one_at_a_time
async def test_a_receipt_stored_before_receipts_were_bounded_still_projects(
    connection: AsyncConnection[Any], runs: bool
) -> None:
    # The reviewer's receipt (10**4 units at 10**15 each, worth 10**19) is refused now, but a
    # store may hold one from before: the read models take it (a rebuild replays it).
    product = _product("OLD-1", 100, 100)
    item = StockItem.open(product.id, LOCATION)
    with pytest.raises(InvalidValue):
        item.receive(10_000, Money(MAX_AMOUNT, "EUR"), document=None)
    item.trigger_event(
        StockItem.Received,
        quantity=10_000,
        unit_cost=Money(MAX_AMOUNT, "EUR"),
        reason="receipt",
        document=None,
    )
    async with connection.transaction(force_rollback=True):
        await _project(connection, _events(product, item), runs=runs)
        cursor = await connection.execute("SELECT units, value, unit_cost FROM product_costs")
        assert await cursor.fetchall() == [(10_000, 10_000 * MAX_AMOUNT, MAX_AMOUNT)]
        assert await inventory_value(connection, "EUR") == 10_000 * MAX_AMOUNT


@runs_or_one_at_a_time
async def test_cost_of_goods_sold_beyond_a_bigint_is_recorded_and_reported(
    connection: AsyncConnection[Any], runs: bool
) -> None:
    # A valid order (10**9 units at 1 cent: a line total of 10**9) of stock that cost 10**15
    # each: its cost of goods is 10**24.
    product = _product("COG-1", 1, MAX_AMOUNT)
    item = StockItem.open(product.id, LOCATION)
    item.receive(1, Money(MAX_AMOUNT, "EUR"), document=None)
    item.adjust(MAX_QUANTITY - 1, reason="found", document=None)
    customer = Customer.register(email="big@example.com", name="Big")
    order_id = UUID(int=400)
    item.reserve(MAX_QUANTITY, document=f"order:{order_id}")
    order = Order.place(
        order_id=order_id,
        order_number="ORD-000001",
        customer_id=customer.id,
        location_id=LOCATION,
        currency="EUR",
        lines=[OrderLine(product.id, "COG-1", "COG-1", MAX_QUANTITY, Money(1, "EUR"))],
        shipping_address="1 Long Street",
        tax_rate_basis_points=2000,
    )
    cost = MAX_QUANTITY * MAX_AMOUNT
    async with connection.transaction(force_rollback=True):
        await _project(connection, _events(product, item, customer, order), runs=runs)
        cursor = await connection.execute("SELECT quantity, revenue, tax, cost FROM sales_lines")
        assert await cursor.fetchall() == [(MAX_QUANTITY, MAX_QUANTITY, MAX_QUANTITY // 5, cost)]
        [header, row] = await _csv(connection, "sales-by-product")
        assert row[header.index("cost")] == f"{cost // 100}.{cost % 100:02d}"
        margin = MAX_QUANTITY - cost
        assert row[header.index("margin")] == f"-{-margin // 100}.{-margin % 100:02d}"
        analytics = await sales_analytics(
            connection,
            SalesFilter(date(2026, 3, 1), date(2026, 3, 1)),
            "day",
            tz="UTC",
            currency="EUR",
            position=0,
        )
        assert (analytics.totals.units, analytics.totals.revenue.amount) == (
            MAX_QUANTITY,
            MAX_QUANTITY,
        )


async def test_a_customer_can_spend_more_than_a_bigint_over_many_orders(
    connection: AsyncConnection[Any],
) -> None:
    # Each order is at most the largest amount; enough of them add up past a bigint.
    orders = BIGINT // MAX_AMOUNT + 1
    product = _product("SPEND-1", MAX_AMOUNT, 0)
    customer = Customer.register(email="spender@example.com", name="Spender")
    placed = [
        Order.place(
            order_id=UUID(int=10**6 + n),
            order_number=f"ORD-{n:06d}",
            customer_id=customer.id,
            location_id=LOCATION,
            currency="EUR",
            lines=[OrderLine(product.id, "SPEND-1", "SPEND-1", 1, Money(MAX_AMOUNT, "EUR"))],
            shipping_address="1 Long Street",
            tax_rate_basis_points=0,
        )
        for n in range(orders)
    ]
    async with connection.transaction(force_rollback=True):
        await _project(connection, _events(product, customer, *placed), runs=True)
        cursor = await connection.execute("SELECT order_count, total_spent FROM customers")
        assert await cursor.fetchall() == [(orders, orders * MAX_AMOUNT)]
        [header, row] = await _csv(connection, "sales-by-customer")
        revenue = orders * MAX_AMOUNT
        assert row[header.index("revenue")] == f"{revenue // 100}.{revenue % 100:02d}"


def _random_text(length: int, seed: int) -> str:
    """Incompressible text of `length` characters, spread over the BMP (3 bytes each)."""
    rng = random.Random(seed)
    return "".join(chr(rng.randrange(0x4E00, 0x9FFF)) for _ in range(length))


def _categorised(category: str) -> list[Product] | None:
    """A product re-categorised as `category` and one created in it, or None if refused."""
    try:
        product = _product("CAT-1", 100, 50, category="tools")
        product.change_details(name="Cat", description="", category=category, supplier_id=None)
        return [product, _product("CAT-2", 100, 50, category=category)]
    except InvalidValue:
        return None


@pytest.mark.parametrize(
    "category",
    [
        "\U0001f9f0" * MAX_CATEGORY_LENGTH,  # the longest allowed, in 4-byte characters
        _random_text(MAX_CATEGORY_LENGTH, 1),
        _random_text(3000, 2),  # the reviewer's
    ],
    ids=["longest-4-byte", "longest-random", "3000-random"],
)
@runs_or_one_at_a_time
async def test_every_category_the_domain_accepts_can_be_indexed(
    connection: AsyncConnection[Any], category: str, runs: bool
) -> None:
    products = _categorised(category)
    if products is None:  # refused: it never reaches the index
        assert len(category) > MAX_CATEGORY_LENGTH
        return
    async with connection.transaction(force_rollback=True):
        await _project(connection, _events(*products), runs=runs)
        cursor = await connection.execute(
            "SELECT sku FROM products WHERE category = %s ORDER BY sku", (category,)
        )
        assert await cursor.fetchall() == [("CAT-1",), ("CAT-2",)]


# The widened tables as deployments created them before (every other table comes from the DDL).
_BEFORE = """
CREATE TABLE product_costs (product_id uuid PRIMARY KEY, currency text NOT NULL,
    units bigint NOT NULL, value bigint NOT NULL, unit_cost bigint NOT NULL,
    updated_at timestamptz NOT NULL);
CREATE TABLE sales_lines (order_id uuid NOT NULL, product_id uuid NOT NULL,
    line_number integer NOT NULL, customer_id uuid NOT NULL, location_id uuid NOT NULL,
    placed_at timestamptz NOT NULL, currency text NOT NULL, quantity bigint NOT NULL,
    revenue bigint NOT NULL, tax bigint NOT NULL, cost bigint NOT NULL,
    cancelled boolean NOT NULL, PRIMARY KEY (order_id, product_id));
CREATE TABLE customers (id uuid PRIMARY KEY, email text NOT NULL, name text NOT NULL,
    phone text NOT NULL, address text NOT NULL, active boolean NOT NULL,
    version integer NOT NULL, created_at timestamptz NOT NULL, updated_at timestamptz NOT NULL,
    order_count integer NOT NULL, open_order_count integer NOT NULL,
    total_spent bigint NOT NULL, currency text, last_order_at timestamptz);
INSERT INTO product_costs VALUES ('00000000-0000-0000-0000-000000000001', 'EUR', 3, 900, 300,
    '2026-01-01');
"""
_WIDENED = [("customers", "total_spent"), ("product_costs", "value"), ("sales_lines", "cost")]


async def test_migrating_widens_the_columns_of_tables_created_before(settings: Settings) -> None:
    [group] = projection_groups()
    schema = f"t_widen_{secrets.token_hex(4)}"
    async with await AsyncConnection.connect(settings.database_url, autocommit=True) as conn:
        await conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
        try:
            await conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
            await conn.execute(_BEFORE)
            for _ in range(2):  # as migrate does on every start: the second time changes nothing
                await conn.execute(group_ddl(group, schema))
                cursor = await conn.execute(
                    "SELECT table_name, column_name, data_type FROM information_schema.columns"
                    " WHERE table_schema = %s AND (table_name, column_name) IN"
                    " (('customers', 'total_spent'), ('product_costs', 'value'),"
                    " ('sales_lines', 'cost')) ORDER BY 1",
                    (schema,),
                )
                assert await cursor.fetchall() == [(*w, "numeric") for w in _WIDENED]
            await conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
            cursor = await conn.execute("SELECT units, value, unit_cost FROM product_costs")
            assert await cursor.fetchall() == [(3, 900, 300)]
        finally:
            await conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))
