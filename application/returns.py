"""Commands on returns: request, approve, reject, cancel, receive, refund, exchange."""

from __future__ import annotations

from typing import Literal
from uuid import UUID, uuid4

import msgspec

from application.context import CommandContext
from application.inventory import stock_item_for
from application.orders import OrderItem, PlaceOrder, next_order_number, placed_order
from application.payments import RefundPayment, refund_payment
from application.store import EventStore, Outcome, UnitOfWork
from application.stripe import StripeGateway
from domain.catalogue import Product
from domain.errors import Conflict, InvalidValue
from domain.locations import Location
from domain.orders import Order, merge_lines
from domain.payments import Payment, refund_shares
from domain.returns import Return, ReturnItem
from domain.values import Money


class ReturnLine(msgspec.Struct, rename="camel", forbid_unknown_fields=True, frozen=True):
    """A product coming back."""

    product_id: UUID
    quantity: int
    reason: str
    condition: Literal["sellable", "damaged"]


class RequestReturn(msgspec.Struct, rename="camel", forbid_unknown_fields=True, frozen=True):
    """A new RMA for shipped lines of an order."""

    order_id: UUID
    items: list[ReturnLine]
    resolution: Literal["refund", "exchange"]
    location_id: UUID


class ReceiveReturn(msgspec.Struct, rename="camel", forbid_unknown_fields=True, frozen=True):
    """Units that arrived; everything outstanding when `items` is absent."""

    items: list[OrderItem] | None = None


class ExchangeReturn(msgspec.Struct, rename="camel", forbid_unknown_fields=True, frozen=True):
    """What to send instead; the returned products again when `items` is absent."""

    items: list[OrderItem] | None = None


def document_of(return_id: UUID) -> str:
    """How stock movements name the return that caused them."""
    return f"return:{return_id}"


def request_return(
    store: EventStore, context: CommandContext, command: RequestReturn
) -> Outcome[Return]:
    """Open an RMA; the order accepts the quantities in the same save (no double returns)."""
    return_id = uuid4()

    def decide(unit: UnitOfWork) -> Return:
        order = unit.get(Order, command.order_id)
        unit.get(Location, command.location_id)  # restocking needs a real location
        items = [
            ReturnItem(
                product_id=i.product_id, quantity=i.quantity, reason=i.reason, condition=i.condition
            )
            for i in command.items
        ]
        rma = Return.request(
            return_id=return_id,
            order_id=order.id,
            items=items,
            resolution=command.resolution,
            location_id=command.location_id,
        )
        order.open_return(rma.id, {i.product_id: i.quantity for i in items})
        unit.add(rma)
        return rma

    return store.execute(context, decide)


def _transition(
    store: EventStore, context: CommandContext, return_id: UUID, action: str, reason: str = ""
) -> Outcome[Return]:
    def decide(unit: UnitOfWork) -> Return:
        rma = unit.get(Return, return_id)
        if action == "approve":
            rma.approve()
            return rma
        if action == "reject":
            rma.reject(reason)
        else:
            rma.cancel()
        order = unit.get(Order, rma.order_id)
        order.release_return(rma.id, {i.product_id: i.quantity for i in rma.items})
        return rma

    return store.execute(context, decide)


def approve_return(store: EventStore, context: CommandContext, return_id: UUID) -> Outcome[Return]:
    """requested → approved."""
    return _transition(store, context, return_id, "approve")


def reject_return(
    store: EventStore, context: CommandContext, return_id: UUID, reason: str
) -> Outcome[Return]:
    """requested → rejected; the units can be returned again."""
    return _transition(store, context, return_id, "reject", reason)


def cancel_return(store: EventStore, context: CommandContext, return_id: UUID) -> Outcome[Return]:
    """Cancel from requested or approved; the units can be returned again."""
    return _transition(store, context, return_id, "cancel")


def receive_return(
    store: EventStore, context: CommandContext, return_id: UUID, command: ReceiveReturn
) -> Outcome[Return]:
    """Units arrive: sellable ones go back on the shelf, damaged ones are written off."""

    def decide(unit: UnitOfWork) -> Return:
        rma = unit.get(Return, return_id)
        wanted = None
        if command.items is not None:
            wanted = merge_lines([(i.product_id, i.quantity) for i in command.items])
        for item in rma.receive(wanted):
            product = unit.get(Product, item.product_id)
            stock = stock_item_for(unit, item.product_id, rma.location_id)
            document = document_of(rma.id)
            stock.receive(item.quantity, product.cost, reason="return", document=document)
            if rma.condition_of(item.product_id) == "damaged":
                stock.adjust(
                    -item.quantity, reason="written off: damaged return", document=document
                )
        return rma

    return store.execute(context, decide)


def refund_return(
    store: EventStore, context: CommandContext, return_id: UUID, stripe: StripeGateway | None
) -> Outcome[Return]:
    """Refund the value of the units received and not refunded yet, from the order's payments.

    Each refund goes in three steps, each safe to repeat: it is decided and saved as under
    way, as what each payment gives back (the order credited with its units in the same save:
    two calls cannot decide two refunds for the same units; payments that cannot cover it
    refuse it before anything is saved); the money moves, each share under its own id (a
    repeat finds it and pays nothing more); the refund is recorded. A call that finds a
    refund under way completes it first, and a call goes on until every unit received is
    refunded, so units that arrive while a refund is under way are not left behind.
    """
    outcome = _refund_once(store, context, return_id, stripe)
    while _left_to_refund(store, outcome.value):
        try:
            outcome = _refund_once(store, context, return_id, stripe)
        except Conflict:  # a call beside this one took them
            break
    return outcome


def _left_to_refund(store: EventStore, rma: Return) -> bool:
    if rma.status == "closed":
        return False
    order = UnitOfWork(store.app).get(Order, rma.order_id)
    return bool(order.uncredited(rma.id, rma.received)) and rma.id in order.credited


def _refund_once(
    store: EventStore, context: CommandContext, return_id: UUID, stripe: StripeGateway | None
) -> Outcome[Return]:
    def start(unit: UnitOfWork) -> Return:
        rma = unit.get(Return, return_id)
        if rma.refund_under_way is None:
            rma.check_refundable()
            order = unit.get(Order, rma.order_id)
            amount = order.credit_return(rma.id, rma.received, rma.refunded_amount)
            payments = [unit.get(Payment, payment_id) for payment_id in order.payment_ids]
            rma.start_refund(refund_shares(payments, amount))
        return rma

    started = store.execute(context, start).value
    under_way = started.refund_under_way
    assert under_way is not None
    for payment_id, share in under_way.shares.items():
        refund_id = f"{under_way.refund_id}:{payment_id}"
        payment = UnitOfWork(store.app).get(Payment, payment_id)
        if not payment.knows_refund(refund_id):
            amount = Money(share, payment.amount.currency)
            refund = RefundPayment(amount=amount, reason=f"return {return_id}")
            refund_payment(store, context, payment_id, refund, stripe, refund_id=refund_id)

    def finish(unit: UnitOfWork) -> Return:
        rma = unit.get(Return, return_id)
        now = rma.refund_under_way
        if now is not None and now.refund_id == under_way.refund_id:  # else recorded beside
            order = unit.get(Order, rma.order_id)
            settled = not order.uncredited(rma.id, rma.received)
            rma.record_refund(all_received_refunded=settled)
        return rma

    return store.execute(context, finish)


def exchange_return(
    store: EventStore,
    context: CommandContext,
    return_id: UUID,
    command: ExchangeReturn,
    stripe: StripeGateway | None,
) -> Outcome[Return]:
    """Place a replacement order credited with the returned value, in the same save as the
    return's exchange (two exchanges of one return cannot both place one); then refund any
    surplus from a payment of the original order that can take it whole."""
    unit = UnitOfWork(store.app)
    rma = unit.get(Return, return_id)
    rma.check_exchangeable()
    order = unit.get(Order, rma.order_id)
    items = command.items or [OrderItem(product_id=p, quantity=q) for p, q in rma.received.items()]
    replacement = PlaceOrder(
        customer_id=order.customer_id,
        items=items,
        shipping_address=order.shipping_address,
        location_id=order.location_id,
        currency=order.currency,
    )
    number = next_order_number(store)
    surplus: list[tuple[UUID, Money]] = []  # (payment, amount) to refund after the save

    def decide(unit: UnitOfWork) -> Return:
        surplus.clear()
        rma = unit.get(Return, return_id)
        rma.check_exchangeable()
        original = unit.get(Order, rma.order_id)
        placed = placed_order(unit, replacement, number)
        credit = original.credit_return(rma.id, rma.received, rma.refunded_amount)
        covered = min(credit.amount, placed.total.amount)
        if covered > 0:
            placed.apply_credit(Money(covered, original.currency), f"return {rma.id}")
        difference = placed.total.amount - credit.amount
        rma.record_exchange(placed.id, difference)
        if difference < 0:
            refund = Money(-difference, original.currency)
            payments = (unit.get(Payment, p) for p in original.payment_ids)
            payer = next((p for p in payments if p.net.amount >= refund.amount), None)
            if payer is None:
                raise InvalidValue("items", "no single payment can refund the price difference")
            surplus.append((payer.id, refund))
        return rma

    outcome = store.execute(context, decide)  # the process manager settles the replacement
    for payment_id, refund in surplus:
        refund_payment(
            store,
            context,
            payment_id,
            RefundPayment(amount=refund, reason=f"exchange {return_id}"),
            stripe,
            refund_id=f"exchange:{return_id}",
        )
    return outcome
