"""Queries on the stock levels read model."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import msgspec
from psycopg import AsyncConnection


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
    cursor = await connection.execute("SELECT sku FROM read.products WHERE id = %s", (product_id,))
    product = await cursor.fetchone()
    if product is None:
        return None
    cursor = await connection.execute(
        "SELECT location_id, on_hand, reserved FROM read.stock_levels WHERE product_id = %s"
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
