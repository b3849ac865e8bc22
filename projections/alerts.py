"""Low-stock alerts: a `system_alert` when a product's available units fall to its reorder level."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from eventsourcing.domain import DomainEventProtocol
from psycopg import AsyncCursor

from domain.catalogue import Product
from domain.inventory import StockItem
from projections.base import Change, EventInfo, RunApplier, Stamped
from projections.movements import movement_of
from projections.unnest import columns

DDL = """
CREATE TABLE IF NOT EXISTS low_stock_state (
    product_id uuid PRIMARY KEY,
    low boolean NOT NULL
);
"""


class LowStockAlertsProjection(RunApplier):
    """Remembers which products are low; runs after products and stock levels in the group."""

    name = "low_stock_alerts"
    ddl = DDL
    tables: tuple[str, ...] = ("low_stock_state",)
    reads: tuple[str, ...] = ("products", "stock_levels")

    def handles(self, event: DomainEventProtocol[Any]) -> bool:
        """Anything that can move available units or the reorder level."""
        return isinstance(event, StockItem.Event | Product.Created | Product.ReorderPolicyChanged)

    def batches(self, event: DomainEventProtocol[Any]) -> bool:
        """Stock movements and new products; a new reorder level is followed on its own (the
        run would read the level after it for the events before it)."""
        return not isinstance(event, Product.ReorderPolicyChanged)

    async def apply_batch(
        self, cursor: AsyncCursor[Any], events: Sequence[Stamped], *, announce: bool = True
    ) -> list[Change]:
        """Follow each product's available units event by event from what they were before
        the run (now minus the run's movements); alert at each fall to the reorder level."""
        items = {e.originator_id for e, _ in events if isinstance(e, StockItem.Event)}
        products = [e.originator_id for e, _ in events if not isinstance(e, StockItem.Event)]
        # A stock item names its product through its stock_levels row.
        await cursor.execute(
            _PRODUCTS.format(
                item="s.stock_item_id",
                source="stock_levels s JOIN products p ON p.id = s.product_id",
                where="s.stock_item_id = ANY(%b::uuid[])",
            )
            + " UNION ALL "
            + _PRODUCTS.format(item="NULL", source="products p", where="p.id = ANY(%b::uuid[])"),
            (list(items), products),
        )
        found = await cursor.fetchall()
        product_of = {row[0]: row[1] for row in found if row[0] is not None}
        steps = []
        for event, info in events:
            if not isinstance(event, StockItem.Event):
                steps.append((event, info, event.originator_id, 0))
                continue
            product_id = product_of.get(event.originator_id)
            if product_id is not None:
                move = movement_of(event)
                delta = move.on_hand - move.reserved if move else 0
                steps.append((event, info, product_id, delta))
        return await self._follow(cursor, found, steps)

    async def _follow(
        self,
        cursor: AsyncCursor[Any],
        found: Sequence[tuple[Any, ...]],
        steps: Sequence[tuple[DomainEventProtocol[Any], EventInfo, UUID, int]],
    ) -> list[Change]:
        """Walk the steps (event, product, change of available) from the products' state
        before them; store each product's new low flag and describe each fall."""
        products = {row[1]: row[1:] for row in found}
        available = {product_id: int(row[4]) for product_id, row in products.items()}
        for _, _, product_id, delta in steps:
            if product_id in available:
                available[product_id] -= delta
        low = {product_id: bool(row[5]) for product_id, row in products.items()}
        flipped: dict[UUID, bool] = {}
        changes: list[Change] = []
        for event, info, product_id, delta in steps:
            if product_id not in products:
                continue
            _, sku, level, status, _, _ = products[product_id]
            available[product_id] += delta
            is_low = level > 0 and available[product_id] <= level and status != "archived"
            if is_low == low[product_id]:
                continue
            low[product_id] = flipped[product_id] = is_low
            # A new product has no stock yet: that is not news, so it starts low silently.
            if is_low and not isinstance(event, Product.Created):
                changes.append(_low_stock(product_id, sku, available[product_id], level, info))
        if flipped:
            await cursor.execute(
                "INSERT INTO low_stock_state (product_id, low)"
                " SELECT * FROM unnest(%b::uuid[], %b::boolean[])"
                " ON CONFLICT (product_id) DO UPDATE SET low = EXCLUDED.low",
                columns(flipped.items()),
            )
        return changes


_PRODUCTS = (
    "SELECT {item}, p.id, p.sku, p.reorder_level, p.status,"
    " COALESCE((SELECT sum(on_hand - reserved) FROM stock_levels t"
    " WHERE t.product_id = p.id), 0),"
    " COALESCE((SELECT low FROM low_stock_state WHERE product_id = p.id), false)"
    " FROM {source} WHERE {where}"
)


def _low_stock(product_id: UUID, sku: str, available: int, level: int, info: EventInfo) -> Change:
    return Change(
        topic="alerts",
        event="system_alert",
        data={
            "type": "low_stock",
            "message": f"{sku}: {available} available, reorder level {level}",
            "productId": str(product_id),
            "sku": sku,
            "available": available,
            "reorderLevel": level,
        },
        position=info.position,
    )
