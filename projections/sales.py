"""Sales facts for analytics and sales reports: one row per order line, refunds apart.

A line's revenue is its line total (tax excluded), recognised when the order is placed; its
tax is the order's tax shared out over the lines in proportion to revenue (the remainder on
the last line, so lines add up to the order); its cost is the quantity at the product's
moving-average cost at that moment (`product_cost_history`, projections/valuation.py; the
catalogue cost of a product never stocked). A cancelled order's lines stay,
flagged, so reports leave them out. Refunds are rows of `sales_refunds`, one per refund of a
payment (returns refund through payments too), dated when the money went back.

Revenue and tax are amounts of one order (Money's range, a bigint); cost is numeric: the
domain bounds the quantity and the average cost, not their product (10**9 units at 10**15).
Sums over lines leave a bigint's range too: reports add them up as numeric.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import groupby
from operator import itemgetter
from typing import Any
from uuid import UUID

from eventsourcing.domain import DomainEventProtocol
from psycopg import AsyncCursor

from domain.orders import Order
from domain.payments import Payment
from projections.base import Change, RunApplier, Stamped
from projections.unnest import columns
from projections.widen import widen_to_numeric

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
    cost numeric NOT NULL,
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
""" + widen_to_numeric("sales_lines", "cost")


_HANDLED = (Order.Placed, Order.LinesChanged, Order.Cancelled, Payment.Created, Payment.Refunded)


def share_out(total: int, weights: Sequence[int]) -> list[int]:
    """`total` split in proportion to `weights` (rounded down, the remainder on the last)."""
    if not weights:
        return []
    whole = sum(weights)
    shares = [total * weight // whole if whole else 0 for weight in weights]
    shares[-1] += total - sum(shares)
    return shares


class SalesProjection(RunApplier):
    """Sales lines per order; runs after OrdersProjection and ProductCostsProjection."""

    name = "sales"
    ddl = DDL
    tables: tuple[str, ...] = ("sales_lines", "sales_refunds", "sales_payments")
    reads: tuple[str, ...] = ("orders", "order_lines", "product_cost_history", "products")

    def handles(self, event: DomainEventProtocol[Any]) -> bool:
        """Orders placed, changed or cancelled; payments started and refunded."""
        return isinstance(event, _HANDLED)

    async def apply_batch(
        self, cursor: AsyncCursor[Any], events: Sequence[Stamped], *, announce: bool = True
    ) -> list[Change]:
        """Record the run's payments and refunds; write afresh the lines of the orders placed
        or changed, as the orders read model has them after the events (it already saw them),
        at the cost of the last such event's moment; flag the lines of orders only cancelled."""
        await _record_payments(cursor, events)
        written: dict[UUID, int] = {}  # order → position of its last placement or change
        placed: set[UUID] = set()
        cancelled: set[UUID] = set()
        for event, info in events:
            if isinstance(event, Payment.Created | Payment.Refunded):
                continue
            if isinstance(event, Order.Cancelled):
                cancelled.add(event.originator_id)
            else:
                written[event.originator_id] = info.position
                if isinstance(event, Order.Placed):
                    placed.add(event.originator_id)
        if cancelled - written.keys():
            await cursor.execute(
                "UPDATE sales_lines SET cancelled = true WHERE order_id = ANY(%s)",
                (list(cancelled - written.keys()),),
            )
        if written.keys() - placed:  # a placed order has no lines yet
            await cursor.execute(
                "DELETE FROM sales_lines WHERE order_id = ANY(%s)", (list(written.keys() - placed),)
            )
        if written:
            await _write_lines(cursor, written)
        return []


async def _record_payments(cursor: AsyncCursor[Any], events: Sequence[Stamped]) -> None:
    """Remember which order each new payment is for, then record each refund against the
    order of its payment (a refund of a payment that is not recorded is left out)."""
    payments = [
        (event.originator_id, event.order_id)
        for event, _ in events
        if isinstance(event, Payment.Created)
    ]
    if payments:
        await cursor.execute(
            "INSERT INTO sales_payments (payment_id, order_id)"
            " SELECT * FROM unnest(%b::uuid[], %b::uuid[])",
            columns(payments),
        )
    refunds = [
        (
            info.position,
            event.refund.amount.currency,
            event.refund.amount.amount,
            info.timestamp,
            event.originator_id,
        )
        for event, info in events
        if isinstance(event, Payment.Refunded)
    ]
    if refunds:
        await cursor.execute(
            "INSERT INTO sales_refunds (position, order_id, customer_id, location_id,"
            " currency, amount, refunded_at) SELECT r.position, o.id, o.customer_id,"
            " o.location_id, r.currency, r.amount, r.at FROM unnest(%b::bigint[], %b::text[],"
            " %b::bigint[], %b::timestamptz[], %b::uuid[])"
            " AS r(position, currency, amount, at, payment_id)"
            " JOIN sales_payments p ON p.payment_id = r.payment_id"
            " JOIN orders o ON o.id = p.order_id",
            columns(refunds),
        )


async def _write_lines(cursor: AsyncCursor[Any], written: dict[UUID, int]) -> None:
    await cursor.execute(
        "SELECT o.id, o.customer_id, o.location_id, o.placed_at, o.currency, o.tax,"
        " o.status = 'cancelled', l.product_id, l.line_number, l.quantity, l.line_total,"
        " COALESCE(c.unit_cost, p.cost_amount, 0)"
        " FROM unnest(%b::uuid[], %b::bigint[]) AS w(order_id, position)"
        " JOIN orders o ON o.id = w.order_id JOIN order_lines l ON l.order_id = o.id"
        " LEFT JOIN products p ON p.id = l.product_id"
        " LEFT JOIN LATERAL (SELECT h.unit_cost FROM product_cost_history h"
        " WHERE h.product_id = l.product_id AND h.position < w.position"
        " ORDER BY h.position DESC LIMIT 1) c ON true"
        " ORDER BY o.id, l.line_number",
        (list(written), list(written.values())),
    )
    lines = await cursor.fetchall()
    if not lines:
        return
    taxes: list[int] = []
    for _, order_lines in groupby(lines, key=itemgetter(0)):
        same = list(order_lines)
        taxes += share_out(int(same[0][5]), [int(line[10]) for line in same])
    await cursor.execute(
        "INSERT INTO sales_lines (order_id, product_id, line_number, customer_id, location_id,"
        " placed_at, currency, quantity, revenue, tax, cost, cancelled)"
        " SELECT * FROM unnest(%b::uuid[], %b::uuid[], %b::integer[], %b::uuid[], %b::uuid[],"
        " %b::timestamptz[], %b::text[], %b::bigint[], %b::bigint[], %b::bigint[],"
        " %b::numeric[], %b::boolean[])",
        columns(
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
                order_id,
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
        ),
    )
