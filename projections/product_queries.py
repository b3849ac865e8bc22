"""Queries on the products read model."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec
from psycopg import AsyncConnection
from psycopg.rows import dict_row

from domain.values import Money
from projections.paging import Page, contains_pattern, next_cursor


class ProductView(msgspec.Struct, rename="camel", frozen=True):
    """A product as clients see it."""

    id: UUID
    sku: str
    name: str
    description: str
    category: str | None
    price: Money
    cost: Money
    reorder_level: int
    reorder_quantity: int
    supplier_id: UUID | None
    allow_backorder: bool
    status: str
    version: int
    created_at: datetime
    updated_at: datetime


class ProductPage(msgspec.Struct, rename="camel", frozen=True):
    """One page of a product list."""

    items: list[ProductView]
    next_cursor: str | None


PRODUCT_SORTS = {
    "createdAt": "created_at",
    "sku": "sku",
    "name": "name",
    "price": "price_amount",
    "updatedAt": "updated_at",
}

_COLUMNS = (
    "id, sku, name, description, category, price_amount, cost_amount, currency, reorder_level,"
    " reorder_quantity, supplier_id, allow_backorder, status, version, created_at, updated_at"
)


def _view(row: dict[str, Any]) -> ProductView:
    return ProductView(
        id=row["id"],
        sku=row["sku"],
        name=row["name"],
        description=row["description"],
        category=row["category"],
        price=Money(row["price_amount"], row["currency"]),
        cost=Money(row["cost_amount"], row["currency"]),
        reorder_level=row["reorder_level"],
        reorder_quantity=row["reorder_quantity"],
        supplier_id=row["supplier_id"],
        allow_backorder=row["allow_backorder"],
        status=row["status"],
        version=row["version"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


async def get_product(connection: AsyncConnection[Any], product_id: UUID) -> ProductView | None:
    """One product, or None."""
    async with connection.cursor(row_factory=dict_row) as cursor:
        await cursor.execute(f"SELECT {_COLUMNS} FROM products WHERE id = %s", (product_id,))
        row = await cursor.fetchone()
    return _view(row) if row else None


async def list_products(
    connection: AsyncConnection[Any],
    page: Page,
    sort: str,
    *,
    q: str | None = None,
    category: str | None = None,
    status: str | None = None,
    low_stock: bool = False,
) -> ProductPage:
    """Products matching the filters, one page in the requested order."""
    where, params = page.where_sql()
    clauses = [where]
    if q:
        clauses.append("(sku ILIKE %s OR name ILIKE %s OR description ILIKE %s)")
        pattern = contains_pattern(q)
        params += [pattern, pattern, pattern]
    if category:
        clauses.append("category = %s")
        params.append(category)
    if status:
        clauses.append("status = %s")
        params.append(status)
    if low_stock:
        clauses.append(
            "reorder_level >= (SELECT COALESCE(sum(s.on_hand - s.reserved), 0)"
            " FROM stock_levels s WHERE s.product_id = products.id)"
        )
    sql = (
        f"SELECT {_COLUMNS} FROM products WHERE {' AND '.join(clauses)} {page.order_sql()} LIMIT %s"
    )
    params.append(page.limit)
    async with connection.cursor(row_factory=dict_row) as cursor:
        await cursor.execute(sql, params)
        rows = await cursor.fetchall()
    sort_key = page.sort_column
    return ProductPage(
        items=[_view(row) for row in rows], next_cursor=next_cursor(page, sort, rows, sort_key)
    )
