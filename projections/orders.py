"""Read model of sales orders and their lines; publishes `order_status` changes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from eventsourcing.domain import DomainEventProtocol
from psycopg import AsyncCursor, sql

from domain.orders import Order, OrderLine, ShipmentItem, tax_on
from domain.values import Money
from projections.base import Change, EventInfo

DDL = """
CREATE TABLE IF NOT EXISTS orders (
    id uuid PRIMARY KEY,
    order_number text NOT NULL,
    customer_id uuid NOT NULL,
    location_id uuid NOT NULL,
    status text NOT NULL,
    payment_status text NOT NULL,
    fulfilment_status text NOT NULL,
    currency text NOT NULL,
    subtotal bigint NOT NULL,
    tax bigint NOT NULL,
    total bigint NOT NULL,
    tax_rate_basis_points integer NOT NULL,
    shipping_address text NOT NULL,
    line_count integer NOT NULL,
    units bigint NOT NULL,
    version integer NOT NULL,
    placed_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS orders_placed_at ON orders (placed_at, id);
CREATE INDEX IF NOT EXISTS orders_order_number ON orders (order_number, id);
CREATE INDEX IF NOT EXISTS orders_total ON orders (total, id);
CREATE INDEX IF NOT EXISTS orders_status ON orders (status, id);
CREATE INDEX IF NOT EXISTS orders_customer ON orders (customer_id, placed_at, id);
CREATE TABLE IF NOT EXISTS order_lines (
    order_id uuid NOT NULL,
    product_id uuid NOT NULL,
    line_number integer NOT NULL,
    sku text NOT NULL,
    name text NOT NULL,
    quantity bigint NOT NULL,
    shipped bigint NOT NULL,
    unit_price bigint NOT NULL,
    line_total bigint NOT NULL,
    backordered bigint NOT NULL,
    PRIMARY KEY (order_id, product_id)
);
"""

_STATUSES: dict[type[Any], str] = {
    Order.Confirmed: "confirmed",
    Order.ProcessingStarted: "processing",
    Order.Delivered: "delivered",
    Order.Cancelled: "cancelled",
}
_HANDLED: tuple[type[Any], ...] = (
    Order.Placed,
    Order.LinesChanged,
    Order.ShipmentDispatched,
    Order.PaymentStatusChanged,
    *_STATUSES,
)


def order_totals(lines: Sequence[OrderLine], currency: str, rate: int) -> tuple[Money, ...]:
    """Subtotal, tax and total of `lines`, computed as the Order aggregate computes them."""
    subtotal = Money(0, currency)
    for line in lines:
        subtotal = subtotal + line.line_total
    tax = tax_on(subtotal, rate)
    return subtotal, tax, subtotal + tax


def fulfilment_status(quantities_shipped: Sequence[tuple[int, int]]) -> str:
    """Order.fulfilment_status from (quantity, shipped) per line."""
    if not any(shipped for _, shipped in quantities_shipped):
        return "unfulfilled"
    if all(shipped >= quantity for quantity, shipped in quantities_shipped):
        return "shipped"
    return "partially_shipped"


class OrdersProjection:
    """One row per order and one per order line; every order event yields `order_status`."""

    name = "orders"
    ddl = DDL
    tables: tuple[str, ...] = ("orders", "order_lines")
    reads: tuple[str, ...] = ()

    def handles(self, event: DomainEventProtocol[Any]) -> bool:
        """Order events."""
        return isinstance(event, _HANDLED)

    async def apply(
        self, cursor: AsyncCursor[Any], event: DomainEventProtocol[Any], info: EventInfo
    ) -> list[Change]:
        """Fold the event into the order's rows, then describe the order's statuses."""
        order_id = event.originator_id
        if isinstance(event, Order.Placed):
            row: Any = await _insert_order(cursor, event, info)
        else:
            row = await _update_order(cursor, event, info)
        if row is None:
            return []
        data = {
            "orderId": str(order_id),
            "status": row[0],
            "paymentStatus": row[1],
            "fulfilmentStatus": row[2],
        }
        return [Change(topic=f"orders.{order_id}", event="order_status", data=data)]


async def _update_order(
    cursor: AsyncCursor[Any], event: DomainEventProtocol[Any], info: EventInfo
) -> Any:
    """Fold a later event into the order; its statuses after it (None for an unknown order)."""
    order_id = event.originator_id
    columns: dict[str, Any]
    if isinstance(event, Order.LinesChanged):
        columns = await _replace_lines(cursor, order_id, event.lines)
    elif isinstance(event, Order.ShipmentDispatched):
        columns = await _ship(cursor, order_id, event.items)
    elif isinstance(event, Order.PaymentStatusChanged):
        columns = {"payment_status": event.payment_status}
    else:
        columns = {"status": _STATUSES[type(event)]}
    assigned = [
        sql.SQL("{} = {}").format(sql.Identifier(column), sql.Placeholder(column))
        for column in columns
    ]
    await cursor.execute(
        sql.SQL(
            "UPDATE orders SET {} WHERE id = %(order_id)s"
            " RETURNING status, payment_status, fulfilment_status"
        ).format(
            sql.SQL(", ").join([*assigned, sql.SQL("version = %(version)s, updated_at = %(at)s")])
        ),
        {
            **columns,
            "order_id": order_id,
            "version": event.originator_version,
            "at": info.timestamp,
        },
    )
    return await cursor.fetchone()


def _line_columns(
    lines: Sequence[OrderLine], currency: str, rate: int, shipped: dict[UUID, int]
) -> dict[str, Any]:
    subtotal, tax, total = order_totals(lines, currency, rate)
    return {
        "subtotal": subtotal.amount,
        "tax": tax.amount,
        "total": total.amount,
        "line_count": len(lines),
        "units": sum(line.quantity for line in lines),
        "fulfilment_status": fulfilment_status(
            [(line.quantity, shipped.get(line.product_id, 0)) for line in lines]
        ),
    }


async def _insert_lines(
    cursor: AsyncCursor[Any], order_id: UUID, lines: Sequence[OrderLine], shipped: dict[UUID, int]
) -> None:
    await cursor.executemany(
        "INSERT INTO order_lines (order_id, product_id, line_number, sku, name, quantity,"
        " shipped, unit_price, line_total, backordered)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        [
            (
                order_id,
                line.product_id,
                number,
                line.sku,
                line.name,
                line.quantity,
                shipped.get(line.product_id, 0),
                line.unit_price.amount,
                line.line_total.amount,
                line.backordered,
            )
            for number, line in enumerate(lines, start=1)
        ],
    )


async def _insert_order(
    cursor: AsyncCursor[Any], event: Order.Placed, info: EventInfo
) -> tuple[str, str, str]:
    """Insert the order and its lines; its statuses (known without asking)."""
    params = {
        **vars(event),
        **_line_columns(event.lines, event.currency, event.tax_rate_basis_points, {}),
        "version": event.originator_version,
        "at": info.timestamp,
    }
    await cursor.execute(
        "INSERT INTO orders (id, order_number, customer_id, location_id, status,"
        " payment_status, fulfilment_status, currency, subtotal, tax, total,"
        " tax_rate_basis_points, shipping_address, line_count, units, version, placed_at,"
        " updated_at) VALUES (%(originator_id)s, %(order_number)s, %(customer_id)s,"
        " %(location_id)s, 'pending', 'unpaid', %(fulfilment_status)s, %(currency)s,"
        " %(subtotal)s, %(tax)s, %(total)s, %(tax_rate_basis_points)s, %(shipping_address)s,"
        " %(line_count)s, %(units)s, %(version)s, %(at)s, %(at)s)",
        params,
    )
    await _insert_lines(cursor, event.originator_id, event.lines, {})
    return "pending", "unpaid", str(params["fulfilment_status"])


async def _replace_lines(
    cursor: AsyncCursor[Any], order_id: UUID, lines: Sequence[OrderLine]
) -> dict[str, Any]:
    await cursor.execute(
        "SELECT currency, tax_rate_basis_points FROM orders WHERE id = %s", (order_id,)
    )
    order = await cursor.fetchone()
    if order is None:
        return {}
    await cursor.execute(
        "DELETE FROM order_lines WHERE order_id = %s RETURNING product_id, shipped",
        (order_id,),
    )
    # Lines change only while pending (nothing shipped); carry shipped units over regardless,
    # so that the fold never relies on that rule.
    shipped = {product_id: units for product_id, units in await cursor.fetchall()}
    await _insert_lines(cursor, order_id, lines, shipped)
    return _line_columns(lines, order[0], order[1], shipped)


async def _ship(
    cursor: AsyncCursor[Any], order_id: UUID, items: Sequence[ShipmentItem]
) -> dict[str, Any]:
    await cursor.executemany(
        "UPDATE order_lines SET shipped = shipped + %s WHERE order_id = %s AND product_id = %s",
        [(item.quantity, order_id, item.product_id) for item in items],
    )
    await cursor.execute(
        "SELECT quantity, shipped FROM order_lines WHERE order_id = %s", (order_id,)
    )
    status = fulfilment_status(await cursor.fetchall())
    # As in ShipmentDispatched.apply: the order is shipped once every line is.
    if status == "shipped":
        return {"fulfilment_status": status, "status": "shipped"}
    return {"fulfilment_status": status}
