"""Queries on the orders, order lines and order timeline read models."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec
from psycopg import AsyncConnection
from psycopg.rows import dict_row

from domain.values import Money
from projections.paging import Page, contains_pattern, next_cursor


class OrderLineView(msgspec.Struct, rename="camel", frozen=True):
    """A line of an order: price at placement, and how much of it has shipped."""

    product_id: UUID
    sku: str
    name: str
    quantity: int
    shipped: int
    backordered: int
    unit_price: Money
    line_total: Money


class OrderView(msgspec.Struct, rename="camel", frozen=True):
    """An order as clients see it."""

    id: UUID
    order_number: str
    customer_id: UUID
    location_id: UUID
    status: str
    payment_status: str
    fulfilment_status: str
    currency: str
    lines: list[OrderLineView]
    subtotal: Money
    tax: Money
    total: Money
    shipping_address: str
    version: int
    placed_at: datetime
    updated_at: datetime


class OrderPage(msgspec.Struct, rename="camel", frozen=True):
    """One page of an order list."""

    items: list[OrderView]
    next_cursor: str | None


class OrderSummary(msgspec.Struct, rename="camel", frozen=True):
    """An order in a customer's history."""

    id: UUID
    order_number: str
    status: str
    payment_status: str
    fulfilment_status: str
    total: Money
    placed_at: datetime


class TimelineEntry(msgspec.Struct, rename="camel", frozen=True):
    """One event in an order's history."""

    position: int
    at: datetime
    actor: str
    kind: str
    text: str
    data: dict[str, Any]


ORDER_SORTS = {
    "placedAt": "placed_at",
    "orderNumber": "order_number",
    "total": "total",
    "status": "status",
}

_COLUMNS = (
    "id, order_number, customer_id, location_id, status, payment_status, fulfilment_status,"
    " currency, subtotal, tax, total, shipping_address, version, placed_at, updated_at"
)


async def _lines(
    connection: AsyncConnection[Any], orders: Sequence[dict[str, Any]]
) -> dict[UUID, list[OrderLineView]]:
    currencies = {row["id"]: row["currency"] for row in orders}
    by_order: dict[UUID, list[OrderLineView]] = {order_id: [] for order_id in currencies}
    async with connection.cursor(row_factory=dict_row) as cursor:
        await cursor.execute(
            "SELECT order_id, product_id, sku, name, quantity, shipped, backordered, unit_price,"
            " line_total FROM order_lines WHERE order_id = ANY(%s)"
            " ORDER BY order_id, line_number",
            (list(currencies),),
        )
        for row in await cursor.fetchall():
            currency = currencies[row["order_id"]]
            by_order[row["order_id"]].append(
                OrderLineView(
                    product_id=row["product_id"],
                    sku=row["sku"],
                    name=row["name"],
                    quantity=row["quantity"],
                    shipped=row["shipped"],
                    backordered=row["backordered"],
                    unit_price=Money(row["unit_price"], currency),
                    line_total=Money(row["line_total"], currency),
                )
            )
    return by_order


async def _views(
    connection: AsyncConnection[Any], rows: Sequence[dict[str, Any]]
) -> list[OrderView]:
    lines = await _lines(connection, rows) if rows else {}
    return [
        OrderView(
            **{key: row[key] for key in row if key not in ("subtotal", "tax", "total")},
            lines=lines[row["id"]],
            subtotal=Money(row["subtotal"], row["currency"]),
            tax=Money(row["tax"], row["currency"]),
            total=Money(row["total"], row["currency"]),
        )
        for row in rows
    ]


async def get_order(connection: AsyncConnection[Any], order_id: UUID) -> OrderView | None:
    """One order with its lines, or None."""
    async with connection.cursor(row_factory=dict_row) as cursor:
        await cursor.execute(f"SELECT {_COLUMNS} FROM orders WHERE id = %s", (order_id,))
        row = await cursor.fetchone()
    return (await _views(connection, [row]))[0] if row else None


async def list_orders(
    connection: AsyncConnection[Any],
    page: Page,
    sort: str,
    *,
    status: str | None = None,
    customer_id: UUID | None = None,
    placed_from: datetime | None = None,
    placed_to: datetime | None = None,
    q: str | None = None,
) -> OrderPage:
    """Orders matching the filters (placed in [from, to)), one page in the requested order."""
    where, params = page.where_sql()
    clauses = [where]
    filters: list[tuple[str, Any]] = [
        ("status = %s", status),
        ("customer_id = %s", customer_id),
        ("placed_at >= %s", placed_from),
        ("placed_at < %s", placed_to),
    ]
    for clause, value in filters:
        if value is not None:
            clauses.append(clause)
            params.append(value)
    if q:
        clauses.append("(order_number ILIKE %s OR shipping_address ILIKE %s)")
        params += [contains_pattern(q)] * 2
    params.append(page.limit)
    async with connection.cursor(row_factory=dict_row) as cursor:
        await cursor.execute(
            f"SELECT {_COLUMNS} FROM orders WHERE {' AND '.join(clauses)}"
            f" {page.order_sql()} LIMIT %s",
            params,
        )
        rows = await cursor.fetchall()
    return OrderPage(
        items=await _views(connection, rows),
        next_cursor=next_cursor(page, sort, rows, page.sort_column),
    )


async def recent_orders(
    connection: AsyncConnection[Any], customer_id: UUID, limit: int = 20
) -> list[OrderSummary]:
    """A customer's latest orders, newest first."""
    async with connection.cursor(row_factory=dict_row) as cursor:
        await cursor.execute(
            "SELECT id, order_number, status, payment_status, fulfilment_status, total, currency,"
            " placed_at FROM orders WHERE customer_id = %s"
            " ORDER BY placed_at DESC, id DESC LIMIT %s",
            (customer_id, limit),
        )
        rows = await cursor.fetchall()
    return [
        OrderSummary(
            id=row["id"],
            order_number=row["order_number"],
            status=row["status"],
            payment_status=row["payment_status"],
            fulfilment_status=row["fulfilment_status"],
            total=Money(row["total"], row["currency"]),
            placed_at=row["placed_at"],
        )
        for row in rows
    ]


async def order_timeline(connection: AsyncConnection[Any], order_id: UUID) -> list[TimelineEntry]:
    """An order's events, oldest first, as sentences (empty for an unknown order)."""
    async with connection.cursor(row_factory=dict_row) as cursor:
        await cursor.execute(
            "SELECT position, at, actor, kind, text, data FROM order_timeline"
            " WHERE order_id = %s ORDER BY position",
            (order_id,),
        )
        rows = await cursor.fetchall()
    return [TimelineEntry(**row) for row in rows]
