"""Commands on payments: checkout, confirm, capture, refund, void, provider news."""

from __future__ import annotations

import logging
from typing import Any, Literal
from uuid import UUID, uuid4

import msgspec

from application.context import CommandContext
from application.store import EventStore, Outcome, UnitOfWork
from application.stripe import (
    IntentState,
    ProviderError,
    ProviderNotConfigured,
    ProviderRefused,
    StripeGateway,
)
from domain.errors import Conflict, DomainError, InvalidValue
from domain.orders import Order
from domain.payments import Payment, amount_due, check_capture_for_order, settle
from domain.values import Money

log = logging.getLogger(__name__)


class Checkout(msgspec.Struct, rename="camel", forbid_unknown_fields=True, frozen=True):
    """Pay an order's outstanding amount."""

    method: Literal["card", "bank_transfer", "cash"]
    provider: Literal["stripe", "manual"] = "manual"


class CapturePayment(msgspec.Struct, rename="camel", forbid_unknown_fields=True, frozen=True):
    """Capture some or all of what is authorized."""

    amount: Money | None = None


class RefundPayment(msgspec.Struct, rename="camel", forbid_unknown_fields=True, frozen=True):
    """Give money back."""

    amount: Money
    reason: str


def _payments(unit: UnitOfWork, order: Order) -> list[Payment]:
    unit.prefetch(order.payment_ids)
    return [unit.get(Payment, payment_id) for payment_id in order.payment_ids]


def outstanding(unit: UnitOfWork, order: Order) -> Money:
    """What the order still needs, given its payments."""
    return amount_due(order, _payments(unit, order))


def _checked_capture(
    unit: UnitOfWork, payment_id: UUID, amount: Money | None
) -> tuple[Payment, Money]:
    payment = unit.get(Payment, payment_id)
    order = unit.get(Order, payment.order_id)
    return payment, check_capture_for_order(order, _payments(unit, order), payment, amount)


def _gateway(provider: str, stripe: StripeGateway | None) -> StripeGateway:
    if stripe is None:
        raise ProviderNotConfigured(f"the {provider} provider is not configured")
    return stripe


def checkout(
    store: EventStore,
    context: CommandContext,
    order_id: UUID,
    command: Checkout,
    stripe: StripeGateway | None,
) -> Outcome[Payment]:
    """Start a payment for the order's outstanding amount."""
    payment_id = uuid4()
    unit = UnitOfWork(store.app)
    order = unit.get(Order, order_id)
    amount = outstanding(unit, order)
    if amount.amount <= 0:
        raise Conflict("the order has nothing left to pay")
    intent: IntentState | None = None
    if command.provider == "stripe":
        intent = _gateway("stripe", stripe).create_intent(
            amount.amount, amount.currency, str(payment_id), {"order_id": str(order_id)}
        )

    def decide(unit: UnitOfWork) -> Payment:
        order = unit.get(Order, order_id)
        if outstanding(unit, order).amount < amount.amount:
            raise Conflict("another payment for this order started meanwhile")
        payment = Payment.start(
            payment_id=payment_id,
            order_id=order.id,
            amount=amount,
            method=command.method,
            provider=command.provider,
        )
        if intent is not None:
            payment.link_provider(intent.reference, intent.client_secret)
        order.start_payment(payment.id)
        unit.add(payment)
        return payment

    return store.execute(context, decide)


def confirm_checkout(
    store: EventStore, context: CommandContext, order_id: UUID, stripe: StripeGateway | None
) -> Outcome[Payment]:
    """Confirm the order's newest open payment (manual ones are authorized at once)."""
    unit = UnitOfWork(store.app)
    order = unit.get(Order, order_id)
    open_payments = [
        p for p in _payments(unit, order) if p.status in ("pending", "requires_action")
    ]
    if not open_payments:
        raise Conflict("the order has no payment waiting for confirmation")
    payment_id = open_payments[-1].id
    state: IntentState | None = None
    if open_payments[-1].provider == "stripe":
        reference = open_payments[-1].provider_reference or ""
        state = _gateway("stripe", stripe).confirm(reference, f"confirm:{payment_id}")

    def decide(unit: UnitOfWork) -> Payment:
        payment = unit.get(Payment, payment_id)
        if state is None:
            payment.authorize()
        else:
            payment.apply_provider_update(
                f"confirm:{payment_id}",
                state.status,
                capturable=state.capturable,
                received=state.received,
            )
        return payment

    return store.execute(context, decide)


def capture_payment(
    store: EventStore,
    context: CommandContext,
    payment_id: UUID,
    command: CapturePayment,
    stripe: StripeGateway | None,
) -> Outcome[Payment]:
    """Capture money (checked against the order first); through Stripe first when the payment
    is Stripe's, whose answer is then recorded as it is."""
    payment, amount = _checked_capture(UnitOfWork(store.app), payment_id, command.amount)
    state: IntentState | None = None
    if payment.provider == "stripe":
        key = f"capture:{payment_id}:{payment.captured.amount}:{amount.amount}"
        state = _gateway("stripe", stripe).capture(
            payment.provider_reference or "", amount.amount, key
        )

    def decide(unit: UnitOfWork) -> Payment:
        if state is None:
            payment, checked = _checked_capture(unit, payment_id, amount)
            payment.capture(checked)
        else:
            payment = unit.get(Payment, payment_id)
            payment.apply_provider_update(
                f"capture:{state.reference}:{state.received}",
                state.status,
                capturable=state.capturable,
                received=state.received,
            )
        return payment

    return store.execute(context, decide)


def refund_payment(
    store: EventStore,
    context: CommandContext,
    payment_id: UUID,
    command: RefundPayment,
    stripe: StripeGateway | None,
    *,
    refund_id: str | None = None,
) -> Outcome[Payment]:
    """Refund (part of) what was captured; a given `refund_id` makes it idempotent."""
    key = refund_id or f"refund:{uuid4()}"
    payment = UnitOfWork(store.app).get(Payment, payment_id)
    if payment.knows_refund(key):
        return Outcome(payment, store.max_position())
    # Checked before asking the provider, and again on save (a concurrent refund may win).
    payment.check_refund(command.amount, command.reason)
    reference = None
    if payment.provider == "stripe":
        result = _gateway("stripe", stripe).refund(
            payment.provider_reference or "", command.amount.amount, key
        )
        reference = result.reference

    def decide(unit: UnitOfWork) -> Payment:
        payment = unit.get(Payment, payment_id)
        payment.refund(key, command.amount, command.reason, reference)
        return payment

    return store.execute(context, decide)


def void_payment(
    store: EventStore, context: CommandContext, payment_id: UUID, stripe: StripeGateway | None
) -> Outcome[Payment]:
    """Release an authorization that was not captured."""
    payment = UnitOfWork(store.app).get(Payment, payment_id)
    if payment.provider == "stripe" and payment.provider_reference:
        payment.check_void()
        _gateway("stripe", stripe).cancel(payment.provider_reference, f"void:{payment_id}")

    def decide(unit: UnitOfWork) -> Payment:
        payment = unit.get(Payment, payment_id)
        payment.void()
        return payment

    return store.execute(context, decide)


_INTENT_STATES = {
    "payment_intent.processing": "processing",
    "payment_intent.requires_action": "requires_action",
    "payment_intent.amount_capturable_updated": "requires_capture",
    "payment_intent.succeeded": "succeeded",
    "payment_intent.payment_failed": "failed",
    "payment_intent.canceled": "canceled",
}


def apply_stripe_event(
    store: EventStore, context: CommandContext, event: dict[str, Any]
) -> Outcome[Payment | None]:
    """Apply a verified webhook event once per Stripe event id, whatever the arrival order."""
    event_id = str(event.get("id", ""))
    kind = str(event.get("type", ""))
    obj = event.get("data", {}).get("object", {})
    if not event_id or not isinstance(obj, dict):
        raise InvalidValue("body", "not a Stripe event")
    metadata = obj.get("metadata") or {}
    payment_id = metadata.get("payment_id")
    intent = obj.get("id") if kind.startswith("payment_intent.") else obj.get("payment_intent")
    order_hint = metadata.get("order_id")

    def decide(unit: UnitOfWork) -> Payment | None:
        payment = _find_payment(unit, payment_id, order_hint, intent)
        if payment is None:
            return None  # not ours (another integration on the same account)
        if kind in _INTENT_STATES:
            payment.apply_provider_update(
                event_id,
                _INTENT_STATES[kind],
                capturable=int(obj.get("amount_capturable") or 0),
                received=int(obj.get("amount_received") or 0),
            )
        elif kind == "charge.refunded" and payment.note_provider_event(event_id):
            for refund in (obj.get("refunds") or {}).get("data", []):
                amount = Money(int(refund["amount"]), payment.amount.currency)
                reference = str(refund["id"])
                if not payment.knows_refund(reference) and amount.amount <= payment.net.amount:
                    payment.refund(reference, amount, "refunded at Stripe", reference)
        return payment

    return store.execute(context, decide)


def _find_payment(unit: UnitOfWork, payment_id: Any, order_id: Any, intent: Any) -> Payment | None:
    candidates: list[UUID] = []
    try:
        if payment_id:
            candidates.append(UUID(str(payment_id)))
        if order_id:
            order = unit.find(Order, UUID(str(order_id)))
            candidates.extend(order.payment_ids if order else [])
    except ValueError:
        return None
    for candidate in candidates:
        payment = unit.find(Payment, candidate)
        if payment is not None and (payment_id or payment.provider_reference == intent):
            return payment
    return None


def settle_order_payment_status(
    store: EventStore, context: CommandContext, order_id: UUID
) -> Outcome[Order]:
    """Derive the order's payment status from its payments; confirm a pending order once paid."""

    def decide(unit: UnitOfWork) -> Order:
        order = unit.get(Order, order_id)
        settle(order, _payments(unit, order))
        return order

    return store.execute(context, decide)


def release_cancelled_order(
    store: EventStore, context: CommandContext, order_id: UUID, stripe: StripeGateway | None
) -> list[Outcome[Payment]]:
    """Give back all a cancelled order's payments hold: refund what they captured, void what
    they only authorized (at Stripe too). Idempotent; nothing unless the order is cancelled."""
    unit = UnitOfWork(store.app)
    order = unit.get(Order, order_id)
    if order.status != "cancelled":
        return []
    outcomes = []
    for payment in _payments(unit, order):
        try:
            if payment.net.amount > 0:
                # Named by what was captured: a capture recorded after this refund gets its own.
                refund_id = f"cancel:{order_id}:{payment.id}:{payment.captured.amount}"
                refund = RefundPayment(amount=payment.net, reason="order cancelled")
                outcomes.append(
                    refund_payment(store, context, payment.id, refund, stripe, refund_id=refund_id)
                )
            elif payment.voidable:
                outcomes.append(void_payment(store, context, payment.id, stripe))
        except ProviderRefused as refused:  # asking again would get the same answer
            log.error("payment %s of cancelled order %s: %s", payment.id, order_id, refused)
        except ProviderError:
            raise  # not now: the whole reaction runs again later (each step is idempotent)
        except DomainError as refused:  # e.g. changed meanwhile: the others still go back
            log.error("payment %s of cancelled order %s: %s", payment.id, order_id, refused)
    return outcomes
