"""Read model of sales orders and their lines; publishes `order_status` changes.

A run of order events is folded in memory, order by order in store order, from the rows of
the orders it continues (read once); then each order and its lines are written once."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.domain import DomainEventProtocol
from psycopg import AsyncCursor

from domain.orders import Order, OrderLine, tax_on
from domain.values import Money
from projections.base import Change, RunApplier, Stamped
from projections.unnest import columns, unnest_of

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


class OrdersProjection(RunApplier):
    """One row per order and one per order line; every order event yields `order_status`."""

    name = "orders"
    ddl = DDL
    tables: tuple[str, ...] = ("orders", "order_lines")
    reads: tuple[str, ...] = ()

    def handles(self, event: DomainEventProtocol[Any]) -> bool:
        """Order events."""
        return isinstance(event, _HANDLED)

    async def apply_batch(
        self, cursor: AsyncCursor[Any], events: Sequence[Stamped], *, announce: bool = True
    ) -> list[Change]:
        """Fold the events into their orders, then write each order and its lines once."""
        placed = {e.originator_id for e, _ in events if isinstance(e, Order.Placed)}
        earlier = {e.originator_id for e, _ in events} - placed
        orders = await _load(
            cursor,
            earlier,
            {
                e.originator_id
                for e, _ in events
                if isinstance(e, (Order.LinesChanged, Order.ShipmentDispatched))
            }
            & earlier,
        )
        changes: list[Change] = []
        for event, info in events:
            order_id = event.originator_id
            if isinstance(event, Order.Placed):
                order = orders[order_id] = _placed(event, info.timestamp)
            elif (found := orders.get(order_id)) is not None:
                order = found
                order.fold(event)
            else:
                continue  # an order the read model does not have
            order.row["version"], order.row["updated_at"] = event.originator_version, info.timestamp
            if announce:
                changes.append(order.change(info.position))
        await _write(cursor, [orders[i] for i in placed], [o for o in orders.values() if not o.new])
        return changes


_ORDER_COLUMNS = (
    ("id", "uuid"),
    ("order_number", "text"),
    ("customer_id", "uuid"),
    ("location_id", "uuid"),
    ("status", "text"),
    ("payment_status", "text"),
    ("fulfilment_status", "text"),
    ("currency", "text"),
    ("subtotal", "bigint"),
    ("tax", "bigint"),
    ("total", "bigint"),
    ("tax_rate_basis_points", "integer"),
    ("shipping_address", "text"),
    ("line_count", "integer"),
    ("units", "bigint"),
    ("version", "integer"),
    ("placed_at", "timestamptz"),
    ("updated_at", "timestamptz"),
)
_CHANGING = (
    "status",
    "payment_status",
    "fulfilment_status",
    "subtotal",
    "tax",
    "total",
    "line_count",
    "units",
    "version",
    "updated_at",
)
_LINE_COLUMNS = (
    ("order_id", "uuid"),
    ("product_id", "uuid"),
    ("line_number", "integer"),
    ("sku", "text"),
    ("name", "text"),
    ("quantity", "bigint"),
    ("shipped", "bigint"),
    ("unit_price", "bigint"),
    ("line_total", "bigint"),
    ("backordered", "bigint"),
)
_TYPES = dict(_ORDER_COLUMNS)


_INSERT_ORDERS = (
    f"INSERT INTO orders ({', '.join(name for name, _ in _ORDER_COLUMNS)})"
    f" SELECT * FROM {unnest_of([name for name, _ in _ORDER_COLUMNS], _TYPES)}"
)
_UPDATE_ORDERS = (
    f"UPDATE orders o SET {', '.join(f'{name} = d.{name}' for name in _CHANGING)}"
    f" FROM {unnest_of(['id', *_CHANGING], _TYPES)} WHERE o.id = d.id"
)
_INSERT_LINES = (
    f"INSERT INTO order_lines ({', '.join(name for name, _ in _LINE_COLUMNS)})"
    f" SELECT * FROM {unnest_of([name for name, _ in _LINE_COLUMNS], dict(_LINE_COLUMNS))}"
)


@dataclass
class _Line:
    product_id: UUID
    sku: str
    name: str
    quantity: int
    shipped: int
    unit_price: int
    line_total: int
    backordered: int


@dataclass
class _Order:
    """An order's row and, when the run changes them, its lines."""

    row: dict[str, Any]
    lines: list[_Line] | None = None  # None: the run leaves the stored lines alone
    new: bool = False

    def fold(self, event: DomainEventProtocol[Any]) -> None:
        """The order after a later event."""
        row = self.row
        if isinstance(event, Order.LinesChanged):
            # Lines change only while pending (nothing shipped); carry shipped units over
            # regardless, so that the fold never relies on that rule.
            shipped = {line.product_id: line.shipped for line in self.lines or ()}
            self.lines = _lines(event.lines, shipped)
            row |= _line_columns(
                event.lines, row["currency"], row["tax_rate_basis_points"], shipped
            )
        elif isinstance(event, Order.ShipmentDispatched):
            lines = {line.product_id: line for line in self.lines or ()}
            for item in event.items:
                if (line := lines.get(item.product_id)) is not None:
                    line.shipped += item.quantity
            status = fulfilment_status([(line.quantity, line.shipped) for line in lines.values()])
            row["fulfilment_status"] = status
            # As in ShipmentDispatched.apply: the order is shipped once every line is.
            if status == "shipped":
                row["status"] = "shipped"
        elif isinstance(event, Order.PaymentStatusChanged):
            row["payment_status"] = event.payment_status
        else:
            row["status"] = _STATUSES[type(event)]

    def change(self, position: int) -> Change:
        """The order's statuses now."""
        row = self.row
        return Change(
            topic=f"orders.{row['id']}",
            event="order_status",
            data={
                "orderId": str(row["id"]),
                "status": row["status"],
                "paymentStatus": row["payment_status"],
                "fulfilmentStatus": row["fulfilment_status"],
            },
            position=position,
        )


def _lines(lines: Sequence[OrderLine], shipped: dict[UUID, int]) -> list[_Line]:
    return [
        _Line(
            line.product_id,
            line.sku,
            line.name,
            line.quantity,
            shipped.get(line.product_id, 0),
            line.unit_price.amount,
            line.line_total.amount,
            line.backordered,
        )
        for line in lines
    ]


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


def _placed(event: Order.Placed, at: datetime) -> _Order:
    row = {
        "id": event.originator_id,
        "order_number": event.order_number,
        "customer_id": event.customer_id,
        "location_id": event.location_id,
        "status": "pending",
        "payment_status": "unpaid",
        "currency": event.currency,
        "tax_rate_basis_points": event.tax_rate_basis_points,
        "shipping_address": event.shipping_address,
        "placed_at": at,
        **_line_columns(event.lines, event.currency, event.tax_rate_basis_points, {}),
    }
    return _Order(row, _lines(event.lines, {}), new=True)


async def _load(
    cursor: AsyncCursor[Any], order_ids: set[UUID], with_lines: set[UUID]
) -> dict[UUID, _Order]:
    """The stored orders among `order_ids`, with their lines for those in `with_lines`."""
    if not order_ids:
        return {}
    names = [name for name, _ in _ORDER_COLUMNS]
    await cursor.execute(
        f"SELECT {', '.join(names)} FROM orders WHERE id = ANY(%s)", (list(order_ids),)
    )
    orders = {row[0]: _Order(dict(zip(names, row, strict=True))) for row in await cursor.fetchall()}
    loading = [order_id for order_id in with_lines if order_id in orders]
    if loading:
        for order_id in loading:
            orders[order_id].lines = []
        await cursor.execute(
            "SELECT order_id, product_id, sku, name, quantity, shipped, unit_price, line_total,"
            " backordered FROM order_lines WHERE order_id = ANY(%s)"
            " ORDER BY order_id, line_number",
            (loading,),
        )
        for order_id, *line in await cursor.fetchall():
            lines = orders[order_id].lines
            assert lines is not None
            lines.append(_Line(*line))
    return orders


async def _write(cursor: AsyncCursor[Any], new: list[_Order], stored: list[_Order]) -> None:
    """Insert the new orders, update the stored ones, and write every changed set of lines."""
    if new:
        await cursor.execute(
            _INSERT_ORDERS, columns(tuple(o.row[name] for name, _ in _ORDER_COLUMNS) for o in new)
        )
    if stored:
        await cursor.execute(
            _UPDATE_ORDERS,
            columns(tuple(o.row[name] for name in ("id", *_CHANGING)) for o in stored),
        )
    rewritten = [o.row["id"] for o in stored if o.lines is not None]
    if rewritten:
        await cursor.execute("DELETE FROM order_lines WHERE order_id = ANY(%s)", (rewritten,))
    lines = [
        (o.row["id"], line.product_id, number, *_line_values(line))
        for o in (*new, *stored)
        if o.lines is not None
        for number, line in enumerate(o.lines, start=1)
    ]
    if lines:
        await cursor.execute(_INSERT_LINES, columns(lines))


def _line_values(line: _Line) -> tuple[Any, ...]:
    return (
        line.sku,
        line.name,
        line.quantity,
        line.shipped,
        line.unit_price,
        line.line_total,
        line.backordered,
    )
