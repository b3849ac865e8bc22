"""Order routes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from litestar import Controller, Response, get, patch, post
from litestar.exceptions import NotFoundException
from litestar.params import Parameter
from psycopg import AsyncConnection

from api.auth import requires
from api.responses import created, done
from api.views import order_view
from application.context import CommandContext
from application.orders import (
    ChangeOrderLines,
    ChangeOrderStatus,
    PlaceOrder,
    ShipOrder,
    change_order_lines,
    change_order_status,
    place_order,
    ship_order,
)
from application.permissions import Permission
from application.store import EventStore
from domain.orders import OrderStatus
from projections.order_queries import (
    ORDER_SORTS,
    OrderPage,
    OrderView,
    TimelineEntry,
    get_order,
    list_orders,
    order_timeline,
)
from projections.paging import parse_page


class OrderController(Controller):
    """Sales orders."""

    path = "/orders"
    tags = ["orders"]

    @post(guards=[requires(Permission.ORDERS_WRITE)], sync_to_thread=True)
    def place(
        self, data: PlaceOrder, store: EventStore, context: CommandContext
    ) -> Response[OrderView]:
        """Place an order: priced server-side, stock reserved in the same atomic save."""
        outcome = place_order(store, context, data)
        order = outcome.value
        return created(order_view(order), outcome.position, f"/api/v1/orders/{order.id}")

    @get(guards=[requires(Permission.ORDERS_READ)])
    async def index(
        self,
        reader: AsyncConnection[Any],
        status: OrderStatus | None = None,
        customer_id: Annotated[UUID | None, Parameter(query="customerId")] = None,
        start: Annotated[datetime | None, Parameter(query="from")] = None,
        end: Annotated[datetime | None, Parameter(query="to")] = None,
        q: str | None = None,
        sort: str | None = None,
        cursor: str | None = None,
        limit: int | None = None,
    ) -> OrderPage:
        """Orders, newest first by default."""
        page = parse_page(
            sort=sort, cursor=cursor, limit=limit, columns=ORDER_SORTS, default="-placedAt"
        )
        return await list_orders(
            reader,
            page,
            sort or "-placedAt",
            status=status,
            customer_id=customer_id,
            placed_from=start,
            placed_to=end,
            q=q,
        )

    @get("/{order_id:uuid}", guards=[requires(Permission.ORDERS_READ)])
    async def get_one(self, order_id: UUID, reader: AsyncConnection[Any]) -> OrderView:
        """One order with its lines."""
        order = await get_order(reader, order_id)
        if order is None:
            raise NotFoundException(f"order {order_id} not found")
        return order

    @get("/{order_id:uuid}/timeline", guards=[requires(Permission.ORDERS_READ)])
    async def timeline(
        self, order_id: UUID, reader: AsyncConnection[Any]
    ) -> dict[str, list[TimelineEntry]]:
        """What happened to the order, in words, oldest first."""
        entries = await order_timeline(reader, order_id)
        if not entries:
            raise NotFoundException(f"order {order_id} not found")
        return {"items": entries}

    @patch("/{order_id:uuid}", guards=[requires(Permission.ORDERS_WRITE)], sync_to_thread=True)
    def change_lines(
        self,
        order_id: UUID,
        data: ChangeOrderLines,
        store: EventStore,
        context: CommandContext,
        if_match: int | None,
    ) -> Response[OrderView]:
        """Replace the lines of a pending order (stock re-reserved atomically)."""
        outcome = change_order_lines(store, context, order_id, data, if_match=if_match)
        return done(order_view(outcome.value), outcome.position)

    @patch(
        "/{order_id:uuid}/status", guards=[requires(Permission.ORDERS_WRITE)], sync_to_thread=True
    )
    def change_status(
        self,
        order_id: UUID,
        data: ChangeOrderStatus,
        store: EventStore,
        context: CommandContext,
        if_match: int | None,
    ) -> Response[OrderView]:
        """Move the order along its lifecycle; illegal transitions are 409."""
        outcome = change_order_status(store, context, order_id, data, if_match=if_match)
        return done(order_view(outcome.value), outcome.position)

    @post(
        "/{order_id:uuid}/shipments",
        guards=[requires(Permission.ORDERS_WRITE)],
        sync_to_thread=True,
    )
    def ship(
        self,
        order_id: UUID,
        data: ShipOrder,
        store: EventStore,
        context: CommandContext,
        if_match: int | None,
    ) -> Response[OrderView]:
        """Ship some or all outstanding units; stock is issued."""
        outcome = ship_order(store, context, order_id, data, if_match=if_match)
        order = outcome.value
        return created(order_view(order), outcome.position, f"/api/v1/orders/{order.id}/timeline")
