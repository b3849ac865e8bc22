"""Low-stock alerts: a `system_alert` when a product's available units fall to its reorder level."""

from __future__ import annotations

from typing import Any

from eventsourcing.domain import DomainEventProtocol
from psycopg import AsyncCursor

from domain.catalogue import Product
from domain.inventory import StockItem
from projections.base import Change, EventInfo

DDL = """
CREATE TABLE IF NOT EXISTS low_stock_state (
    product_id uuid PRIMARY KEY,
    low boolean NOT NULL
);
"""


class LowStockAlertsProjection:
    """Remembers which products are low; runs after products and stock levels in the group."""

    name = "low_stock_alerts"
    ddl = DDL
    tables: tuple[str, ...] = ("low_stock_state",)

    def handles(self, event: DomainEventProtocol[Any]) -> bool:
        """Anything that can move available units or the reorder level."""
        return isinstance(event, StockItem.Event | Product.Created | Product.ReorderPolicyChanged)

    async def apply(
        self, cursor: AsyncCursor[Any], event: DomainEventProtocol[Any], info: EventInfo
    ) -> list[Change]:
        """Alert when the product becomes low; forget the alert once it recovers."""
        # A stock item names its product through its stock_levels row (one round trip).
        product = (
            "(SELECT product_id FROM stock_levels WHERE stock_item_id = %s)"
            if isinstance(event, StockItem.Event)
            else "%s"
        )
        await cursor.execute(
            "SELECT p.id, p.sku, p.reorder_level, p.status,"
            " COALESCE((SELECT sum(on_hand - reserved) FROM stock_levels s"
            " WHERE s.product_id = p.id), 0),"
            " COALESCE((SELECT low FROM low_stock_state WHERE product_id = p.id), false)"
            f" FROM products p WHERE p.id = {product}",
            (event.originator_id,),
        )
        row = await cursor.fetchone()
        if row is None:
            return []
        product_id, sku, level, status, available, was_low = row
        is_low = level > 0 and available <= level and status != "archived"
        if is_low == was_low:
            return []
        await cursor.execute(
            "INSERT INTO low_stock_state (product_id, low) VALUES (%s, %s)"
            " ON CONFLICT (product_id) DO UPDATE SET low = EXCLUDED.low",
            (product_id, is_low),
        )
        # A new product has no stock yet: that is not news, so it starts low silently.
        if not is_low or isinstance(event, Product.Created):
            return []
        return [
            Change(
                topic="alerts",
                event="system_alert",
                data={
                    "type": "low_stock",
                    "message": f"{sku}: {available} available, reorder level {level}",
                    "productId": str(product_id),
                    "sku": sku,
                    "available": int(available),
                    "reorderLevel": level,
                },
            )
        ]
