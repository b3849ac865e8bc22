"""Queries on the stock levels read model."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec
from psycopg import AsyncConnection
from psycopg.rows import dict_row

from domain.values import Money
from projections.paging import Page, next_cursor


class LocationStock(msgspec.Struct, rename="camel", frozen=True):
    """Stock of a product at one location."""

    location_id: UUID
    on_hand: int
    reserved: int
    available: int


class ProductStock(msgspec.Struct, rename="camel", frozen=True):
    """Stock of a product, in total and per location."""

    product_id: UUID
    sku: str
    on_hand: int
    reserved: int
    available: int
    locations: list[LocationStock]


async def get_product_stock(
    connection: AsyncConnection[Any], product_id: UUID
) -> ProductStock | None:
    """Stock of a product (zero everywhere when nothing was received yet), None if unknown."""
    cursor = await connection.execute("SELECT sku FROM products WHERE id = %s", (product_id,))
    product = await cursor.fetchone()
    if product is None:
        return None
    cursor = await connection.execute(
        "SELECT location_id, on_hand, reserved FROM stock_levels WHERE product_id = %s"
        " ORDER BY location_id",
        (product_id,),
    )
    locations = [
        LocationStock(
            location_id=loc, on_hand=on_hand, reserved=reserved, available=on_hand - reserved
        )
        for loc, on_hand, reserved in await cursor.fetchall()
    ]
    on_hand = sum(s.on_hand for s in locations)
    reserved = sum(s.reserved for s in locations)
    return ProductStock(
        product_id=product_id,
        sku=product[0],
        on_hand=on_hand,
        reserved=reserved,
        available=on_hand - reserved,
        locations=locations,
    )


class StockItemView(msgspec.Struct, rename="camel", frozen=True):
    """One product's stock at one location, as a command answers it."""

    product_id: UUID
    location_id: UUID
    on_hand: int
    reserved: int
    available: int
    version: int


class StockMove(msgspec.Struct, rename="camel", frozen=True):
    """One line of the stock ledger."""

    position: int
    product_id: UUID
    location_id: UUID
    kind: str
    quantity: int
    on_hand_after: int
    reason: str
    document: str | None
    actor: str
    at: datetime
    unit_cost: Money | None = None


class StockMovePage(msgspec.Struct, rename="camel", frozen=True):
    """One page of the ledger, oldest first."""

    items: list[StockMove]
    next_cursor: str | None


@dataclass(frozen=True)
class MoveFilter:
    """Which ledger lines to list."""

    product_id: UUID | None = None
    location_id: UUID | None = None
    start: datetime | None = None
    end: datetime | None = None
    reason: str | None = None


async def list_moves(
    connection: AsyncConnection[Any], page: Page, sort: str, where: MoveFilter
) -> StockMovePage:
    """Ledger lines matching the filter, one page."""
    condition, params = page.where_sql()
    clauses = [condition]
    for column, op, value in (
        ("product_id", "=", where.product_id),
        ("location_id", "=", where.location_id),
        ("at", ">=", where.start),
        ("at", "<", where.end),
        ("reason", "=", where.reason),
    ):
        if value is not None:
            clauses.append(f"{column} {op} %s")
            params.append(value)
    params.append(page.limit)
    async with connection.cursor(row_factory=dict_row) as cursor:
        await cursor.execute(
            "SELECT position, product_id, location_id, kind, quantity,"
            " on_hand_after, unit_cost, currency, reason, document, actor, at"
            f" FROM stock_moves WHERE {' AND '.join(clauses)} {page.order_sql()} LIMIT %s",
            params,
        )
        rows = await cursor.fetchall()
    items = [
        StockMove(
            position=row["position"],
            product_id=row["product_id"],
            location_id=row["location_id"],
            kind=row["kind"],
            quantity=row["quantity"],
            on_hand_after=row["on_hand_after"],
            reason=row["reason"],
            document=row["document"],
            actor=row["actor"],
            at=row["at"],
            unit_cost=Money(row["unit_cost"], row["currency"]) if row["currency"] else None,
        )
        for row in rows
    ]
    return StockMovePage(items=items, next_cursor=next_cursor(page, sort, rows, page.sort_column))


MOVE_SORTS = {"position": "position"}


class LowStockAlert(msgspec.Struct, rename="camel", frozen=True):
    """A product at or below its reorder level."""

    product_id: UUID
    sku: str
    name: str
    available: int
    reorder_level: int
    suggested_reorder_quantity: int


def suggested_reorder_quantity(available: int, reorder_level: int, reorder_quantity: int) -> int:
    """The product's reorder quantity, or enough to reach twice the reorder level."""
    if reorder_quantity > 0:
        return reorder_quantity
    return max(2 * reorder_level - available, 1)


async def list_low_stock(connection: AsyncConnection[Any]) -> list[LowStockAlert]:
    """Active products whose total available units are at or below their reorder level."""
    cursor = await connection.execute(
        "SELECT p.id, p.sku, p.name, COALESCE(sum(s.on_hand - s.reserved), 0) AS available,"
        " p.reorder_level, p.reorder_quantity FROM products p"
        " LEFT JOIN stock_levels s ON s.product_id = p.id"
        " WHERE p.status <> 'archived' AND p.reorder_level > 0"
        " GROUP BY p.id HAVING COALESCE(sum(s.on_hand - s.reserved), 0) <= p.reorder_level"
        " ORDER BY p.sku"
    )
    return [
        LowStockAlert(
            product_id=pid,
            sku=sku,
            name=name,
            available=int(available),
            reorder_level=level,
            suggested_reorder_quantity=suggested_reorder_quantity(int(available), level, quantity),
        )
        for pid, sku, name, available, level, quantity in await cursor.fetchall()
    ]
