"""Return (RMA) routes."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

import msgspec
from litestar import Controller, Response, get, post
from litestar.params import Parameter
from psycopg import AsyncConnection

from api.auth import requires
from api.responses import created, done
from api.routes.payments import provide_stripe
from application.context import CommandContext
from application.permissions import Permission
from application.returns import (
    ExchangeReturn,
    ReceiveReturn,
    RequestReturn,
    approve_return,
    cancel_return,
    exchange_return,
    receive_return,
    refund_return,
    reject_return,
    request_return,
)
from application.store import EventStore
from application.stripe import StripeGateway
from domain.returns import Return, ReturnStatus
from projections.return_queries import (
    ReturnItemView,
    ReturnRate,
    ReturnView,
    list_returns,
    returns_report,
)


class RejectReturn(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """Why a return is refused."""

    reason: str = "rejected"


def return_view(rma: Return) -> ReturnView:
    """The wire shape of a return, from the aggregate a command returned."""
    return ReturnView(
        id=rma.id,
        order_id=rma.order_id,
        status=rma.status,
        resolution=rma.resolution,
        location_id=rma.location_id,
        items=[
            ReturnItemView(
                product_id=i.product_id,
                quantity=i.quantity,
                reason=i.reason,
                condition=i.condition,
                received=rma.received.get(i.product_id, 0),
            )
            for i in rma.items
        ],
        refunded_amount=rma.refunded_amount,
        replacement_order_id=rma.replacement_order_id,
        version=rma.version,
        created_at=rma.created_on,
        updated_at=rma.modified_on,
    )


class ReturnController(Controller):
    """Returns: request, approve, reject, receive, refund, exchange, cancel."""

    path = "/returns"
    tags = ["returns"]
    dependencies = {"stripe": provide_stripe}

    @post(guards=[requires(Permission.ORDERS_WRITE)], sync_to_thread=True)
    def request(
        self, data: RequestReturn, store: EventStore, context: CommandContext
    ) -> Response[ReturnView]:
        """Open a return for shipped lines (never more than shipped minus returned)."""
        outcome = request_return(store, context, data)
        rma = outcome.value
        return created(return_view(rma), outcome.position, f"/api/v1/returns/{rma.id}")

    @get(guards=[requires(Permission.ORDERS_READ)])
    async def index(
        self,
        reader: AsyncConnection[Any],
        order_id: Annotated[UUID | None, Parameter(query="orderId")] = None,
        status: ReturnStatus | None = None,
        limit: Annotated[int, Parameter(ge=1, le=500)] = 50,
    ) -> dict[str, Any]:
        """Returns, newest first."""
        items = await list_returns(reader, order_id=order_id, status=status, limit=limit)
        return {"items": items, "nextCursor": None}

    @get("/report", guards=[requires(Permission.REPORTS_READ)])
    async def report(self, reader: AsyncConnection[Any]) -> dict[str, list[ReturnRate]]:
        """Per product: units shipped, units returned, the rate, and the reasons given."""
        return {"items": await returns_report(reader)}

    @post(
        "/{return_id:uuid}/approve",
        guards=[requires(Permission.ORDERS_WRITE)],
        sync_to_thread=True,
        status_code=200,
    )
    def approve(
        self, return_id: UUID, store: EventStore, context: CommandContext
    ) -> Response[ReturnView]:
        """Accept the return."""
        outcome = approve_return(store, context, return_id)
        return done(return_view(outcome.value), outcome.position)

    @post(
        "/{return_id:uuid}/reject",
        guards=[requires(Permission.ORDERS_WRITE)],
        sync_to_thread=True,
        status_code=200,
    )
    def reject(
        self,
        return_id: UUID,
        store: EventStore,
        context: CommandContext,
        data: RejectReturn | None = None,
    ) -> Response[ReturnView]:
        """Refuse the return."""
        reason = (data or RejectReturn()).reason
        outcome = reject_return(store, context, return_id, reason)
        return done(return_view(outcome.value), outcome.position)

    @post(
        "/{return_id:uuid}/cancel",
        guards=[requires(Permission.ORDERS_WRITE)],
        sync_to_thread=True,
        status_code=200,
    )
    def cancel(
        self, return_id: UUID, store: EventStore, context: CommandContext
    ) -> Response[ReturnView]:
        """Cancel a requested or approved return."""
        outcome = cancel_return(store, context, return_id)
        return done(return_view(outcome.value), outcome.position)

    @post(
        "/{return_id:uuid}/receive",
        guards=[requires(Permission.ORDERS_WRITE)],
        sync_to_thread=True,
        status_code=200,
    )
    def receive(
        self,
        return_id: UUID,
        store: EventStore,
        context: CommandContext,
        data: ReceiveReturn | None = None,
    ) -> Response[ReturnView]:
        """Units arrived (all outstanding without a body): restocked or written off."""
        outcome = receive_return(store, context, return_id, data or ReceiveReturn())
        return done(return_view(outcome.value), outcome.position)

    @post(
        "/{return_id:uuid}/refund",
        guards=[requires(Permission.ORDERS_WRITE)],
        sync_to_thread=True,
        status_code=200,
    )
    def refund(
        self,
        return_id: UUID,
        store: EventStore,
        context: CommandContext,
        stripe: StripeGateway | None,
    ) -> Response[ReturnView]:
        """Refund what was received and not refunded yet."""
        outcome = refund_return(store, context, return_id, stripe)
        return done(return_view(outcome.value), outcome.position)

    @post(
        "/{return_id:uuid}/exchange",
        guards=[requires(Permission.ORDERS_WRITE)],
        sync_to_thread=True,
        status_code=200,
    )
    def exchange(
        self,
        return_id: UUID,
        store: EventStore,
        context: CommandContext,
        stripe: StripeGateway | None,
        data: ExchangeReturn | None = None,
    ) -> Response[ReturnView]:
        """Place a replacement order credited with the returned value."""
        outcome = exchange_return(store, context, return_id, data or ExchangeReturn(), stripe)
        return done(return_view(outcome.value), outcome.position)
