"""Sales facts for analytics and sales reports: one row per order line, refunds apart.

A line's revenue is its line total (tax excluded), recognised when the order is placed; its
tax is the order's tax shared out over the lines in proportion to revenue (the remainder on
the last line, so lines add up to the order); its cost is the quantity at the product's
moving-average cost at that moment (projections/valuation.py). A cancelled order's lines stay,
flagged, so reports leave them out. Refunds are rows of `sales_refunds`, one per refund of a
payment (returns refund through payments too), dated when the money went back.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from eventsourcing.domain import DomainEventProtocol
from psycopg import AsyncCursor

from domain.orders import Order
from domain.payments import Payment
from projections.base import Change, EventInfo

DDL = """
CREATE TABLE IF NOT EXISTS sales_lines (
    order_id uuid NOT NULL,
    product_id uuid NOT NULL,
    line_number integer NOT NULL,
    customer_id uuid NOT NULL,
    location_id uuid NOT NULL,
    placed_at timestamptz NOT NULL,
    currency text NOT NULL,
    quantity bigint NOT NULL,
    revenue bigint NOT NULL,
    tax bigint NOT NULL,
    cost bigint NOT NULL,
    cancelled boolean NOT NULL,
    PRIMARY KEY (order_id, product_id)
);
CREATE INDEX IF NOT EXISTS sales_lines_placed_at ON sales_lines (placed_at);
CREATE INDEX IF NOT EXISTS sales_lines_product ON sales_lines (product_id, placed_at);
CREATE INDEX IF NOT EXISTS sales_lines_customer ON sales_lines (customer_id, placed_at);
CREATE TABLE IF NOT EXISTS sales_refunds (
    position bigint NOT NULL,
    seq integer NOT NULL DEFAULT 0,
    order_id uuid NOT NULL,
    customer_id uuid NOT NULL,
    location_id uuid NOT NULL,
    product_id uuid,
    currency text NOT NULL,
    amount bigint NOT NULL,
    refunded_at timestamptz NOT NULL,
    PRIMARY KEY (position, seq)
);
CREATE INDEX IF NOT EXISTS sales_refunds_refunded_at ON sales_refunds (refunded_at);
CREATE TABLE IF NOT EXISTS sales_payments (
    payment_id uuid PRIMARY KEY,
    order_id uuid NOT NULL
);
"""


_HANDLED = (Order.Placed, Order.LinesChanged, Order.Cancelled, Payment.Created, Payment.Refunded)


def share_out(total: int, weights: Sequence[int]) -> list[int]:
    """`total` split in proportion to `weights` (rounded down, the remainder on the last)."""
    if not weights:
        return []
    whole = sum(weights)
    shares = [total * weight // whole if whole else 0 for weight in weights]
    shares[-1] += total - sum(shares)
    return shares


class SalesProjection:
    """Sales lines per order; runs after OrdersProjection and ProductCostsProjection."""

    name = "sales"
    ddl = DDL
    tables: tuple[str, ...] = ("sales_lines", "sales_refunds", "sales_payments")
    reads: tuple[str, ...] = ("orders", "order_lines", "product_costs", "products")

    def handles(self, event: DomainEventProtocol[Any]) -> bool:
        """Orders placed, changed or cancelled; payments started and refunded."""
        return isinstance(event, _HANDLED)

    async def apply(
        self, cursor: AsyncCursor[Any], event: DomainEventProtocol[Any], info: EventInfo
    ) -> list[Change]:
        """Write the order's lines afresh, or flag them cancelled."""
        if isinstance(event, Order.Cancelled):
            await cursor.execute(
                "UPDATE sales_lines SET cancelled = true WHERE order_id = %s",
                (event.originator_id,),
            )
        elif isinstance(event, Payment.Created):
            await cursor.execute(
                "INSERT INTO sales_payments (payment_id, order_id) VALUES (%s, %s)",
                (event.originator_id, event.order_id),
            )
        elif isinstance(event, Payment.Refunded):
            await cursor.execute(
                "INSERT INTO sales_refunds (position, order_id, customer_id, location_id,"
                " currency, amount, refunded_at) SELECT %s, o.id, o.customer_id, o.location_id,"
                " %s, %s, %s FROM sales_payments p JOIN orders o ON o.id = p.order_id"
                " WHERE p.payment_id = %s",
                (
                    info.position,
                    event.refund.amount.currency,
                    event.refund.amount.amount,
                    info.timestamp,
                    event.originator_id,
                ),
            )
        else:
            await _write_lines(cursor, event.originator_id, fresh=isinstance(event, Order.Placed))
        return []


async def _write_lines(cursor: AsyncCursor[Any], order_id: UUID, *, fresh: bool) -> None:
    """The order's lines as the orders read model now has them (it already saw the event)."""
    await cursor.execute(
        "SELECT o.customer_id, o.location_id, o.placed_at, o.currency, o.tax,"
        " o.status = 'cancelled', l.product_id, l.line_number, l.quantity, l.line_total,"
        " COALESCE(c.unit_cost, p.cost_amount, 0)"
        " FROM orders o JOIN order_lines l ON l.order_id = o.id"
        " LEFT JOIN product_costs c ON c.product_id = l.product_id"
        " LEFT JOIN products p ON p.id = l.product_id"
        " WHERE o.id = %s ORDER BY l.line_number",
        (order_id,),
    )
    lines = await cursor.fetchall()
    if not fresh:  # a placed order has no lines yet
        await cursor.execute("DELETE FROM sales_lines WHERE order_id = %s", (order_id,))
    if not lines:
        return
    taxes = share_out(int(lines[0][4]), [int(line[9]) for line in lines])
    await cursor.executemany(
        "INSERT INTO sales_lines (order_id, product_id, line_number, customer_id, location_id,"
        " placed_at, currency, quantity, revenue, tax, cost, cancelled)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        [
            (
                order_id,
                product_id,
                number,
                customer_id,
                location_id,
                placed_at,
                currency,
                quantity,
                revenue,
                tax,
                quantity * unit_cost,
                cancelled,
            )
            for (
                customer_id,
                location_id,
                placed_at,
                currency,
                _,
                cancelled,
                product_id,
                number,
                quantity,
                revenue,
                unit_cost,
            ), tax in zip(lines, taxes, strict=True)
        ],
    )
