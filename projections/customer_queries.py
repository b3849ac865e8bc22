"""Queries on the customers read model, including a customer's order history."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec
from psycopg import AsyncConnection
from psycopg.rows import dict_row

from domain.values import Money
from projections.order_queries import OrderSummary, recent_orders
from projections.paging import Page, contains_pattern, next_cursor


class CustomerView(msgspec.Struct, rename="camel", frozen=True):
    """A customer as clients see it."""

    id: UUID
    email: str
    name: str
    phone: str
    address: str
    active: bool
    version: int
    created_at: datetime
    updated_at: datetime


class CustomerPage(msgspec.Struct, rename="camel", frozen=True):
    """One page of a customer list."""

    items: list[CustomerView]
    next_cursor: str | None


class CustomerHistory(CustomerView, rename="camel", frozen=True):
    """A customer with their order figures and latest orders."""

    order_count: int
    open_order_count: int
    total_spent: Money | None  # None before the first order
    last_order_at: datetime | None
    recent_orders: list[OrderSummary]


CUSTOMER_SORTS = {
    "createdAt": "created_at",
    "updatedAt": "updated_at",
    "name": "name",
    "email": "email",
    "orderCount": "order_count",
}

RECENT_ORDERS = 20

_COLUMNS = "id, email, name, phone, address, active, version, created_at, updated_at"


async def get_customer(connection: AsyncConnection[Any], customer_id: UUID) -> CustomerView | None:
    """One customer, or None."""
    async with connection.cursor(row_factory=dict_row) as cursor:
        await cursor.execute(f"SELECT {_COLUMNS} FROM customers WHERE id = %s", (customer_id,))
        row = await cursor.fetchone()
    return CustomerView(**row) if row else None


async def list_customers(
    connection: AsyncConnection[Any],
    page: Page,
    sort: str,
    *,
    q: str | None = None,
    active: bool | None = None,
) -> CustomerPage:
    """Customers matching the filters (q: name, email or phone), one page in order."""
    where, params = page.where_sql()
    clauses = [where]
    if q:
        clauses.append("(name ILIKE %s OR email ILIKE %s OR phone ILIKE %s)")
        params += [contains_pattern(q)] * 3
    if active is not None:
        clauses.append("active = %s")
        params.append(active)
    params.append(page.limit)
    # The sort column is selected too, for the cursor (order_count is not a view field).
    async with connection.cursor(row_factory=dict_row) as cursor:
        await cursor.execute(
            f"SELECT {_COLUMNS}, {page.sort_column} AS sort_key FROM customers"
            f" WHERE {' AND '.join(clauses)} {page.order_sql()} LIMIT %s",
            params,
        )
        rows = await cursor.fetchall()
    return CustomerPage(
        items=[CustomerView(**{k: v for k, v in row.items() if k != "sort_key"}) for row in rows],
        next_cursor=next_cursor(page, sort, rows, "sort_key"),
    )


async def customer_history(
    connection: AsyncConnection[Any], customer_id: UUID
) -> CustomerHistory | None:
    """A customer's order figures and their latest orders, or None."""
    async with connection.cursor(row_factory=dict_row) as cursor:
        await cursor.execute(
            f"SELECT {_COLUMNS}, order_count, open_order_count, total_spent, currency,"
            " last_order_at FROM customers WHERE id = %s",
            (customer_id,),
        )
        row = await cursor.fetchone()
    if row is None:
        return None
    total_spent, currency = row.pop("total_spent"), row.pop("currency")
    return CustomerHistory(
        **row,
        total_spent=Money(int(total_spent), currency) if currency else None,
        recent_orders=await recent_orders(connection, customer_id, RECENT_ORDERS),
    )
