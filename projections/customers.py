"""Read model of customers, with their order history figures."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from eventsourcing.domain import DomainEventProtocol
from psycopg import AsyncCursor

from domain.customers import Customer
from domain.orders import Order
from projections.base import Change, EventInfo, RunApplier, Stamped
from projections.widen import widen_to_numeric

DDL = """
CREATE TABLE IF NOT EXISTS customers (
    id uuid PRIMARY KEY,
    email text NOT NULL,
    name text NOT NULL,
    phone text NOT NULL,
    address text NOT NULL,
    active boolean NOT NULL,
    version integer NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    order_count integer NOT NULL,
    open_order_count integer NOT NULL,
    total_spent numeric NOT NULL,
    currency text,
    last_order_at timestamptz
);
CREATE INDEX IF NOT EXISTS customers_created_at ON customers (created_at, id);
CREATE INDEX IF NOT EXISTS customers_name ON customers (name, id);
CREATE INDEX IF NOT EXISTS customers_email ON customers (email, id);
""" + widen_to_numeric("customers", "total_spent")

_UPDATES: dict[type[Any], str] = {
    Customer.DetailsChanged: "name = %(name)s, phone = %(phone)s, address = %(address)s",
    Customer.EmailChanged: "email = %(email)s",
    Customer.Deactivated: "active = false",
}
_ORDER_EVENTS = (Order.Placed, Order.LinesChanged, Order.Cancelled, Order.Delivered)

# Figures recomputed from the customers' rows in orders, which already reflect the events; a
# customer's currency is that of their first order (the first placed in the events, if none).
_RECOUNT = """
UPDATE customers c SET currency = COALESCE(c.currency, t.currency),
    (order_count, open_order_count, total_spent, last_order_at) = (
    SELECT count(*),
        count(*) FILTER (WHERE o.status NOT IN ('delivered', 'cancelled')),
        COALESCE(sum(o.total) FILTER (
            WHERE o.status <> 'cancelled' AND o.currency = COALESCE(c.currency, t.currency)), 0),
        max(o.placed_at)
    FROM orders o WHERE o.customer_id = c.id)
FROM (
    SELECT DISTINCT ON (o.customer_id) o.customer_id, f.currency
    FROM orders o LEFT JOIN unnest(%b::uuid[], %b::text[]) AS f(customer_id, currency)
        ON f.customer_id = o.customer_id
    WHERE o.id = ANY(%s)
) t
WHERE c.id = t.customer_id
"""


class CustomersProjection(RunApplier):
    """One row per customer, with order count, open orders, total spent and last order time.

    The order figures are read from orders, so this projection must be in the same group
    as OrdersProjection and after it (then it sees the event's effect on the order, in the same
    transaction), and both must be rebuilt together. "Open" means neither delivered nor
    cancelled; total spent is the sum of the totals of orders not cancelled in `currency`, the
    currency of the customer's first order (orders in other currencies are counted, not summed).
    Each total is an amount; their sum is not bounded, so it is numeric.
    """

    name = "customers"
    ddl = DDL
    tables: tuple[str, ...] = ("customers",)
    reads: tuple[str, ...] = ("orders",)

    def handles(self, event: DomainEventProtocol[Any]) -> bool:
        """Customer events, and the order events that change a customer's figures."""
        return isinstance(event, (Customer.Registered, *_UPDATES, *_ORDER_EVENTS))

    def batches(self, event: DomainEventProtocol[Any]) -> bool:
        """Order events join runs; customer events are applied one at a time."""
        return isinstance(event, _ORDER_EVENTS)

    async def apply_batch(
        self, cursor: AsyncCursor[Any], events: Sequence[Stamped], *, announce: bool = True
    ) -> list[Change]:
        """Insert on registration or update details (a customer event comes alone); recount,
        once, the customers of the orders the order events changed."""
        orders: set[UUID] = set()
        first: dict[UUID, str] = {}
        for event, info in events:
            if isinstance(event, Order.Placed):
                first.setdefault(event.customer_id, event.currency)
            if isinstance(event, _ORDER_EVENTS):
                orders.add(event.originator_id)
            else:
                await _change_customer(cursor, event, info)
        if orders:
            await cursor.execute(_RECOUNT, (list(first), list(first.values()), list(orders)))
        return []


async def _change_customer(
    cursor: AsyncCursor[Any], event: DomainEventProtocol[Any], info: EventInfo
) -> None:
    """Insert a registered customer, or update their details."""
    if isinstance(event, Customer.Registered):
        await cursor.execute(
            "INSERT INTO customers (id, email, name, phone, address, active, version,"
            " created_at, updated_at, order_count, open_order_count, total_spent)"
            " VALUES (%s, %s, %s, %s, %s, true, %s, %s, %s, 0, 0, 0)",
            (
                event.originator_id,
                event.email,
                event.name,
                event.phone,
                event.address,
                event.originator_version,
                info.timestamp,
                info.timestamp,
            ),
        )
    elif type(event) in _UPDATES:
        params = {
            **vars(event),
            "version": event.originator_version,
            "at": info.timestamp,
        }
        await cursor.execute(
            f"UPDATE customers SET {_UPDATES[type(event)]}, version = %(version)s,"
            " updated_at = %(at)s WHERE id = %(originator_id)s",
            params,
        )
