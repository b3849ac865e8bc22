"""Inventory routes: stock movements and stock levels."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from litestar import Controller, Response, get, post
from litestar.exceptions import NotFoundException
from psycopg import AsyncConnection

from api.auth import requires
from api.responses import done
from api.views import stock_item_view
from application.context import CommandContext
from application.inventory import AdjustStock, ReceiveStock, adjust_stock, receive_stock
from application.permissions import Permission
from application.store import EventStore
from projections.stock_queries import ProductStock, StockItemView, get_product_stock


class InventoryController(Controller):
    """Receipts, adjustments and stock levels."""

    path = "/inventory"
    tags = ["inventory"]

    @post("/receipts", guards=[requires(Permission.INVENTORY_WRITE)], sync_to_thread=True)
    def receive(
        self, data: ReceiveStock, store: EventStore, context: CommandContext
    ) -> Response[StockItemView]:
        """Book goods in at a location."""
        outcome = receive_stock(store, context, data)
        return done(stock_item_view(outcome.value), outcome.position)

    @post("/adjustments", guards=[requires(Permission.INVENTORY_WRITE)], sync_to_thread=True)
    def adjust(
        self, data: AdjustStock, store: EventStore, context: CommandContext
    ) -> Response[StockItemView]:
        """Correct on hand by a signed quantity with a reason."""
        outcome = adjust_stock(store, context, data)
        return done(stock_item_view(outcome.value), outcome.position)

    @get("/stock/{product_id:uuid}", guards=[requires(Permission.INVENTORY_READ)])
    async def stock(self, product_id: UUID, reader: AsyncConnection[Any]) -> ProductStock:
        """A product's stock in total and per location."""
        stock = await get_product_stock(reader, product_id)
        if stock is None:
            raise NotFoundException(f"product {product_id} not found")
        return stock
