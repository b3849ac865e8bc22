"""Commands on returns: request, approve, reject, cancel, receive, refund, exchange."""

from __future__ import annotations

from typing import Literal
from uuid import UUID, uuid4

import msgspec

from application.context import CommandContext
from application.inventory import stock_item_for
from application.orders import OrderItem, PlaceOrder, place_order
from application.payments import RefundPayment, refund_payment
from application.store import EventStore, Outcome, UnitOfWork
from application.stripe import StripeGateway
from domain.catalogue import Product
from domain.errors import Conflict, InvalidValue
from domain.locations import Location
from domain.orders import Order, merge_lines
from domain.payments import Payment
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
    """Refund the value of the units received and not refunded yet, from the order's payments."""
    unit = UnitOfWork(store.app)
    rma = unit.get(Return, return_id)
    order = unit.get(Order, rma.order_id)
    due = order.value_of(rma.received).amount - rma.refunded_amount
    if due <= 0:
        raise Conflict("nothing received is left to refund")
    remaining = due
    for payment_id in order.payment_ids:
        payment = unit.get(Payment, payment_id)
        share = min(remaining, payment.net.amount)
        if share <= 0:
            continue
        refund_payment(
            store,
            context,
            payment.id,
            RefundPayment(amount=Money(share, order.currency), reason=f"return {rma.id}"),
            stripe,
            refund_id=f"return:{rma.id}:{rma.refunded_amount}:{payment.id}",
        )
        remaining -= share
        if remaining == 0:
            break
    if remaining:
        raise Conflict(f"the order's payments can refund only {due - remaining} of {due}")

    def decide(unit: UnitOfWork) -> Return:
        rma = unit.get(Return, return_id)
        rma.record_refund(due)
        return rma

    return store.execute(context, decide)


def exchange_return(
    store: EventStore,
    context: CommandContext,
    return_id: UUID,
    command: ExchangeReturn,
    stripe: StripeGateway | None,
) -> Outcome[Return]:
    """Place a replacement order credited with the returned value; refund any surplus."""
    unit = UnitOfWork(store.app)
    rma = unit.get(Return, return_id)
    order = unit.get(Order, rma.order_id)
    if rma.status != "received":
        raise Conflict(f"cannot exchange a return that is {rma.status}")
    items = command.items or [OrderItem(product_id=p, quantity=q) for p, q in rma.received.items()]
    placed = place_order(
        store,
        context,
        PlaceOrder(
            customer_id=order.customer_id,
            items=items,
            shipping_address=order.shipping_address,
            location_id=order.location_id,
            currency=order.currency,
        ),
    ).value
    credit = order.value_of(rma.received)
    difference = placed.total.amount - credit.amount

    def decide(unit: UnitOfWork) -> Return:
        rma = unit.get(Return, return_id)
        replacement = unit.get(Order, placed.id)
        replacement.apply_credit(
            Money(min(credit.amount, placed.total.amount), order.currency), f"return {rma.id}"
        )
        rma.record_exchange(placed.id, difference)
        return rma

    outcome = store.execute(context, decide)
    if difference < 0:
        for payment_id in order.payment_ids:
            payment = UnitOfWork(store.app).get(Payment, payment_id)
            if payment.net.amount >= -difference:
                refund_payment(
                    store,
                    context,
                    payment.id,
                    RefundPayment(
                        amount=Money(-difference, order.currency), reason=f"exchange {rma.id}"
                    ),
                    stripe,
                    refund_id=f"exchange:{rma.id}",
                )
                break
        else:
            raise InvalidValue("items", "no single payment can refund the price difference")
    return outcome
