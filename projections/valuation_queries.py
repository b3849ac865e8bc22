"""Inventory metrics: units, value at moving-average cost, low and out of stock."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import msgspec
from psycopg import AsyncConnection

from domain.values import Money

VALUE_SQL = (
    "CASE WHEN c.units > 0 THEN round(s.on_hand::numeric * c.value / c.units)"
    " ELSE s.on_hand::numeric * c.unit_cost END"
)
"""What the units of a stock_levels row `s` are worth at its product's average cost `c`: a
share of the product's value (so the rows of a product add up to it, give or take rounding).
Numeric, as the value is: it may be past a bigint's range."""


class LocationMetrics(msgspec.Struct, rename="camel", frozen=True):
    """Units and value at one location."""

    location_id: UUID
    code: str | None
    name: str | None
    units: int
    value: Money


class InventoryMetrics(msgspec.Struct, rename="camel", frozen=True):
    """Stock over every location, valued at moving-average cost in `currency`."""

    total_units: int
    total_value: Money
    low_stock_count: int
    out_of_stock_count: int
    locations: list[LocationMetrics]
    currency: str
    position: int


async def stock_counts(connection: AsyncConnection[Any]) -> tuple[int, int]:
    """Products at or below their reorder level; stocked products with nothing available.

    Both leave archived products out; "low" is what GET /inventory/alerts lists.
    """
    cursor = await connection.execute(
        "SELECT count(*) FILTER (WHERE reorder_level > 0 AND available <= reorder_level),"
        " count(*) FILTER (WHERE stocked AND available <= 0) FROM ("
        " SELECT p.reorder_level, COALESCE(sum(s.on_hand - s.reserved), 0) AS available,"
        " count(s.stock_item_id) > 0 AS stocked FROM products p"
        " LEFT JOIN stock_levels s ON s.product_id = p.id"
        " WHERE p.status <> 'archived' GROUP BY p.id) per_product"
    )
    row = await cursor.fetchone()
    return (int(row[0]), int(row[1])) if row else (0, 0)


async def inventory_value(connection: AsyncConnection[Any], currency: str) -> int:
    """What everything on hand is worth in `currency` (minor units)."""
    cursor = await connection.execute(
        f"SELECT COALESCE(sum({VALUE_SQL}), 0) FROM stock_levels s"
        " JOIN product_costs c ON c.product_id = s.product_id WHERE c.currency = %s",
        (currency,),
    )
    row = await cursor.fetchone()
    return int(row[0]) if row else 0


async def inventory_metrics(
    connection: AsyncConnection[Any], currency: str, position: int
) -> InventoryMetrics:
    """Totals and a per-location breakdown (products valued in other currencies count 0)."""
    cursor = await connection.execute(
        f"SELECT s.location_id, l.code, l.name, sum(s.on_hand),"
        f" COALESCE(sum({VALUE_SQL}) FILTER (WHERE c.currency = %s), 0)"
        " FROM stock_levels s LEFT JOIN locations l ON l.id = s.location_id"
        " LEFT JOIN product_costs c ON c.product_id = s.product_id"
        " GROUP BY s.location_id, l.code, l.name ORDER BY l.code, s.location_id",
        (currency,),
    )
    locations = [
        LocationMetrics(
            location_id=location_id,
            code=code,
            name=name,
            units=int(units),
            value=Money(int(value), currency),
        )
        for location_id, code, name, units, value in await cursor.fetchall()
    ]
    low, out = await stock_counts(connection)
    return InventoryMetrics(
        total_units=sum(location.units for location in locations),
        total_value=Money(sum(location.value.amount for location in locations), currency),
        low_stock_count=low,
        out_of_stock_count=out,
        locations=locations,
        currency=currency,
        position=position,
    )
