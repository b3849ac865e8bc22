"""Inventory routes: stock movements and stock levels."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

import msgspec
from litestar import Controller, Response, get, post
from litestar.exceptions import NotFoundException
from litestar.params import Parameter
from psycopg import AsyncConnection

from api.auth import requires
from api.responses import created, done
from api.views import stock_item_view
from application.context import CommandContext
from application.inventory import (
    AdjustStock,
    CountStock,
    ReceiveStock,
    TransferStock,
    adjust_stock,
    count_stock,
    receive_stock,
    transfer_stock,
)
from application.permissions import Permission
from application.store import EventStore
from projections.paging import parse_page
from projections.stock_queries import (
    MOVE_SORTS,
    LowStockAlert,
    MoveFilter,
    ProductStock,
    StockItemView,
    StockMovePage,
    get_product_stock,
    list_low_stock,
    list_moves,
)


class TransferView(msgspec.Struct, frozen=True):
    """Both sides of a transfer after it."""

    document: str
    source: StockItemView
    destination: StockItemView


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

    @post("/transfers", guards=[requires(Permission.INVENTORY_WRITE)], sync_to_thread=True)
    def transfer(
        self, data: TransferStock, store: EventStore, context: CommandContext
    ) -> Response[TransferView]:
        """Move units between locations (both sides in one atomic save)."""
        outcome = transfer_stock(store, context, data)
        moved = outcome.value
        return created(
            TransferView(
                document=moved.document,
                source=stock_item_view(moved.source),
                destination=stock_item_view(moved.destination),
            ),
            outcome.position,
            f"/api/v1/inventory/moves?productId={data.product_id}",
        )

    @post("/counts", guards=[requires(Permission.INVENTORY_WRITE)], sync_to_thread=True)
    def count(
        self, data: CountStock, store: EventStore, context: CommandContext
    ) -> Response[list[StockItemView]]:
        """Reconcile on hand to a physical count: one adjustment per differing line."""
        outcome = count_stock(store, context, data)
        return done([stock_item_view(item) for item in outcome.value], outcome.position)

    @get("/moves", guards=[requires(Permission.INVENTORY_READ)])
    async def moves(
        self,
        reader: AsyncConnection[Any],
        product_id: Annotated[UUID | None, Parameter(query="productId")] = None,
        location_id: Annotated[UUID | None, Parameter(query="locationId")] = None,
        start: Annotated[datetime | None, Parameter(query="from")] = None,
        end: Annotated[datetime | None, Parameter(query="to")] = None,
        reason: str | None = None,
        sort: str | None = None,
        cursor: str | None = None,
        limit: int | None = None,
    ) -> StockMovePage:
        """The stock ledger, oldest first (`sort=-position` for newest first)."""
        page = parse_page(
            sort=sort,
            cursor=cursor,
            limit=limit,
            columns=MOVE_SORTS,
            default="position",
            tiebreak="position",
        )
        where = MoveFilter(
            product_id=product_id, location_id=location_id, start=start, end=end, reason=reason
        )
        return await list_moves(reader, page, sort or "position", where)

    @get("/alerts", guards=[requires(Permission.INVENTORY_READ)])
    async def alerts(self, reader: AsyncConnection[Any]) -> dict[str, list[LowStockAlert]]:
        """Products at or below their reorder level, with a suggested reorder quantity."""
        return {"items": await list_low_stock(reader)}

    @get("/stock/{product_id:uuid}", guards=[requires(Permission.INVENTORY_READ)])
    async def stock(self, product_id: UUID, reader: AsyncConnection[Any]) -> ProductStock:
        """A product's stock in total and per location."""
        stock = await get_product_stock(reader, product_id)
        if stock is None:
            raise NotFoundException(f"product {product_id} not found")
        return stock
