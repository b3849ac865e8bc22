"""Checkout, payments and the Stripe webhook."""

from __future__ import annotations

import asyncio
from datetime import date
from typing import Annotated, Any
from uuid import UUID

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.datastructures import State
from litestar.exceptions import NotFoundException, ValidationException
from litestar.params import Parameter
from psycopg import AsyncConnection

from api.auth import requires
from api.dependencies import services
from api.responses import created, done
from api.views import payment_view
from application.company import read_settings
from application.context import CommandContext
from application.payments import (
    CapturePayment,
    Checkout,
    RefundPayment,
    apply_stripe_event,
    capture_payment,
    checkout,
    confirm_checkout,
    refund_payment,
    void_payment,
)
from application.permissions import Permission
from application.store import EventStore
from application.stripe import StripeGateway, verify_signature
from domain.payments import PaymentStatus
from projections.payment_queries import PaymentView, list_payments, reconciliation


async def provide_stripe(state: State) -> StripeGateway | None:
    """The process's Stripe adapter, made on first use; None when no API key is set."""
    settings = services(state).settings
    if not settings.stripe_api_key:
        return None
    gateway: StripeGateway | None = state.get("stripe_gateway")
    if gateway is None:
        gateway = StripeGateway(settings.stripe_api_key, settings.stripe_api_base)
        state["stripe_gateway"] = gateway
    return gateway


class CheckoutController(Controller):
    """Paying an order."""

    path = "/checkout"
    tags = ["payments"]
    dependencies = {"stripe": provide_stripe}

    @post("/{order_id:uuid}", guards=[requires(Permission.ORDERS_WRITE)], sync_to_thread=True)
    def start(
        self,
        order_id: UUID,
        data: Checkout,
        store: EventStore,
        context: CommandContext,
        stripe: StripeGateway | None,
    ) -> Response[PaymentView]:
        """A payment for the order's outstanding amount."""
        outcome = checkout(store, context, order_id, data, stripe)
        payment = outcome.value
        view = payment_view(payment, with_secret=True)
        return created(view, outcome.position, f"/api/v1/payments/{payment.id}")

    @post(
        "/{order_id:uuid}/confirm",
        guards=[requires(Permission.ORDERS_WRITE)],
        status_code=200,
        sync_to_thread=True,
    )
    def confirm(
        self,
        order_id: UUID,
        store: EventStore,
        context: CommandContext,
        stripe: StripeGateway | None,
    ) -> Response[PaymentView]:
        """Confirm the order's open payment (manual payments become authorized)."""
        outcome = confirm_checkout(store, context, order_id, stripe)
        return done(payment_view(outcome.value), outcome.position)


class PaymentController(Controller):
    """Payments: list, capture, refund, void."""

    path = "/payments"
    tags = ["payments"]
    dependencies = {"stripe": provide_stripe}

    @get(guards=[requires(Permission.ORDERS_READ)])
    async def index(
        self,
        reader: AsyncConnection[Any],
        order_id: Annotated[UUID | None, Parameter(query="orderId")] = None,
        status: PaymentStatus | None = None,
        limit: Annotated[int, Parameter(ge=1, le=500)] = 50,
    ) -> dict[str, Any]:
        """Payments, newest first."""
        items = await list_payments(reader, order_id=order_id, status=status, limit=limit)
        return {"items": items, "nextCursor": None}

    @get("/reconciliation", guards=[requires(Permission.REPORTS_READ)])
    async def reconciliation(
        self,
        reader: AsyncConnection[Any],
        store: EventStore,
        start: Annotated[date, Parameter(query="startDate")],
        end: Annotated[date, Parameter(query="endDate")],
    ) -> dict[str, Any]:
        """Captured, refunded and net per day (company time zone) and provider."""
        if end < start:
            raise ValidationException("endDate is before startDate")
        timezone = (await asyncio.to_thread(read_settings, store)).timezone
        rows = await reconciliation(reader, start=start, end=end, timezone=timezone)
        return {"items": rows, "timezone": timezone}

    @post(
        "/{payment_id:uuid}/capture",
        guards=[requires(Permission.PAYMENTS_WRITE)],
        status_code=200,
        sync_to_thread=True,
    )
    def capture(
        self,
        payment_id: UUID,
        store: EventStore,
        context: CommandContext,
        stripe: StripeGateway | None,
        data: CapturePayment | None = None,
    ) -> Response[PaymentView]:
        """Capture some or all of the authorized amount."""
        outcome = capture_payment(store, context, payment_id, data or CapturePayment(), stripe)
        return done(payment_view(outcome.value), outcome.position)

    @post(
        "/{payment_id:uuid}/refund",
        guards=[requires(Permission.PAYMENTS_WRITE)],
        status_code=200,
        sync_to_thread=True,
    )
    def refund(
        self,
        payment_id: UUID,
        data: RefundPayment,
        store: EventStore,
        context: CommandContext,
        stripe: StripeGateway | None,
    ) -> Response[PaymentView]:
        """Refund part of what was captured (never more than captured, in total)."""
        outcome = refund_payment(store, context, payment_id, data, stripe)
        return done(payment_view(outcome.value), outcome.position)

    @post(
        "/{payment_id:uuid}/void",
        guards=[requires(Permission.PAYMENTS_WRITE)],
        status_code=200,
        sync_to_thread=True,
    )
    def void(
        self,
        payment_id: UUID,
        store: EventStore,
        context: CommandContext,
        stripe: StripeGateway | None,
    ) -> Response[PaymentView]:
        """Release an uncaptured authorization."""
        outcome = void_payment(store, context, payment_id, stripe)
        return done(payment_view(outcome.value), outcome.position)


@post(
    "/api/v1/webhooks/stripe",
    opt={"exclude_from_auth": True},
    status_code=200,
    tags=["payments"],
)
async def stripe_webhook(request: Request[Any, Any, Any], store: EventStore) -> Response[Any]:
    """Stripe events, signature-checked, each applied at most once in any arrival order."""
    settings = services(request.app.state).settings
    if not settings.stripe_webhook_secret:
        # No secret, no way to trust a caller: the endpoint does not exist here.
        raise NotFoundException("Stripe webhooks are not enabled (PMS_STRIPE_WEBHOOK_SECRET)")
    body = await request.body()  # the exact bytes Stripe signed
    verify_signature(
        body, request.headers.get("stripe-signature", ""), settings.stripe_webhook_secret
    )
    try:
        event = msgspec.json.decode(body, type=dict[str, Any])
    except msgspec.DecodeError:
        raise ValidationException("the body is not JSON") from None
    request_id = str(request.scope["state"].get("request_id", ""))
    context = CommandContext(
        actor="provider:stripe", correlation_id=request_id, causation_id=str(event.get("id"))
    )
    outcome = await asyncio.to_thread(apply_stripe_event, store, context, event)
    return Response({"received": True}, headers={"X-PMS-Position": str(outcome.position)})
