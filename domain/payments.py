"""Payments of an order: authorize, capture (partially), refund (partially), void, fail."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.errors import Conflict, IllegalTransition, InvalidValue
from domain.orders import Order, payment_status_for
from domain.values import Money, required_text

PaymentStatus = Literal[
    "pending",
    "requires_action",
    "authorized",
    "captured",
    "partially_refunded",
    "refunded",
    "voided",
    "failed",
]
Method = Literal["card", "bank_transfer", "cash"]
Provider = Literal["manual", "stripe"]

# How far along a payment is; provider news never moves it backwards.
_RANK = {"pending": 0, "requires_action": 1, "authorized": 2, "captured": 3}
_FINAL = ("voided", "failed")
_CAN_HOLD = ("pending", "requires_action", "authorized", "captured")


class RefundExceedsCaptured(Conflict):
    """More would be refunded than was captured."""

    code = "refund-exceeds-captured"


class CaptureExceedsOrder(Conflict):
    """The order's payments would hold more than the order owes."""

    code = "capture-exceeds-order"


@dataclass(frozen=True)
class Refund:
    """Money given back, as its own record."""

    refund_id: str
    amount: Money
    reason: str
    provider_reference: str | None = None


class Payment(Aggregate):
    """One attempt to collect money for an order through a provider."""

    class Created(Aggregate.Created):
        order_id: UUID
        amount: Money
        method: str
        provider: str

    @event(Created)
    def __init__(self, order_id: UUID, amount: Money, method: str, provider: str) -> None:
        self.order_id = order_id
        self.amount = amount
        self.method = method
        self.provider = provider
        self.status: PaymentStatus = "pending"
        self.provider_reference: str | None = None
        self.client_secret: str | None = None
        self.authorized = Money(0, amount.currency)
        self.captured = Money(0, amount.currency)
        self.refunds: list[Refund] = []
        self.provider_events: set[str] = set()
        self.failure_reason: str | None = None

    @classmethod
    def start(
        cls,
        *,
        payment_id: UUID,
        order_id: UUID,
        amount: Money,
        method: Method,
        provider: Provider,
    ) -> Payment:
        """A pending payment of a positive amount."""
        if amount.amount <= 0:
            raise InvalidValue("amount", "a payment must be for a positive amount")
        return cls._create(
            cls.Created,
            id=payment_id,
            order_id=order_id,
            amount=amount,
            method=method,
            provider=provider,
        )

    @property
    def refunded(self) -> Money:
        """Sum of all refunds."""
        total = Money(0, self.amount.currency)
        for refund in self.refunds:
            total = total + refund.amount
        return total

    @property
    def net(self) -> Money:
        """Captured minus refunded: what the order has really been paid by this payment."""
        return self.captured - self.refunded

    @property
    def active(self) -> bool:
        """Still counts towards the order (not voided or failed)."""
        return self.status not in _FINAL

    @property
    def capturable(self) -> Money:
        """What may still be captured: the rest of the authorization, until a refund."""
        if self._capture_open:
            return self.authorized - self.captured
        return Money(0, self.amount.currency)

    @property
    def _capture_open(self) -> bool:
        # Stripe captures a PaymentIntent once and releases the rest of it.
        captured = self.status == "captured" and self.provider != "stripe"
        return self.status == "authorized" or captured

    @property
    def covers(self) -> Money:
        """What this payment pays of its order or may still pay: all of it until authorized,
        then its net plus what it may still capture."""
        if self.status in ("pending", "requires_action"):
            return self.amount
        return self.net + self.capturable

    @property
    def voidable(self) -> bool:
        """Nothing captured and not over: the hold can be released."""
        return self.status in ("pending", "requires_action", "authorized")

    class ProviderLinked(Aggregate.Event):
        reference: str
        client_secret: str | None

        def apply(self, payment: Payment) -> None:
            payment.provider_reference = self.reference
            payment.client_secret = self.client_secret

    class ActionRequired(Aggregate.Event):
        def apply(self, payment: Payment) -> None:
            payment.status = "requires_action"

    class Authorized(Aggregate.Event):
        amount: Money

        def apply(self, payment: Payment) -> None:
            payment.authorized = self.amount
            if payment.captured.amount == 0:
                payment.status = "authorized"

    class Captured(Aggregate.Event):
        amount: Money  # this capture's amount

        def apply(self, payment: Payment) -> None:
            payment.captured = payment.captured + self.amount
            payment.status = "captured"

    class Refunded(Aggregate.Event):
        refund: Refund

        def apply(self, payment: Payment) -> None:
            payment.refunds.append(self.refund)
            fully = payment.refunded.amount >= payment.captured.amount
            payment.status = "refunded" if fully else "partially_refunded"

    class Voided(Aggregate.Event):
        def apply(self, payment: Payment) -> None:
            payment.status = "voided"

    class Failed(Aggregate.Event):
        reason: str

        def apply(self, payment: Payment) -> None:
            payment.status = "failed"
            payment.failure_reason = self.reason

    class ProviderEventNoted(Aggregate.Event):
        provider_event_id: str

        def apply(self, payment: Payment) -> None:
            payment.provider_events.add(self.provider_event_id)

    def link_provider(self, reference: str, client_secret: str | None) -> None:
        """Remember the provider's id for this payment (e.g. a PaymentIntent)."""
        if self.provider_reference not in (None, reference):
            raise Conflict("the payment is already linked to another provider object")
        if self.provider_reference is None:
            self.trigger_event(
                self.ProviderLinked, reference=reference, client_secret=client_secret
            )

    def require_action(self) -> None:
        """The customer must act (e.g. 3-D Secure) before authorization."""
        self._require_open("require action")
        if _RANK[self.status] < _RANK["requires_action"]:
            self.trigger_event(self.ActionRequired)

    def authorize(self, amount: Money | None = None) -> None:
        """The provider holds the money (up to the payment's amount)."""
        self._require_open("authorize")
        amount = amount or self.amount
        self._check_currency(amount)
        if not 0 < amount.amount <= self.amount.amount:
            raise InvalidValue("amount", f"must be between 0 and {self.amount.amount}")
        if _RANK[self.status] >= _RANK["authorized"]:
            raise IllegalTransition(f"the payment is already {self.status}")
        self.trigger_event(self.Authorized, amount=amount)

    def check_capture(self, amount: Money | None = None) -> Money:
        """What a capture of `amount` would take (all that is capturable when None), or raise."""
        if not self._capture_open:
            raise IllegalTransition(
                f"cannot capture a {self.provider} payment that is {self.status}"
            )
        remaining = self.capturable
        amount = amount or remaining
        self._check_currency(amount)
        if amount.amount <= 0:
            raise InvalidValue("amount", "must be positive")
        if amount.amount > remaining.amount:
            raise Conflict(f"only {remaining.amount} of the authorized amount is left to capture")
        return amount

    def capture(self, amount: Money | None = None) -> Money:
        """Take (part of) the authorized money; never more than authorized in total."""
        amount = self.check_capture(amount)
        self.trigger_event(self.Captured, amount=amount)
        return amount

    def knows_refund(self, reference: str) -> bool:
        """Whether a refund with this id or provider reference is recorded."""
        return any(reference in (r.refund_id, r.provider_reference) for r in self.refunds)

    def refund(
        self, refund_id: str, amount: Money, reason: str, provider_reference: str | None = None
    ) -> bool:
        """Give money back; False when this refund was already recorded (idempotent)."""
        if self.knows_refund(refund_id) or (
            provider_reference is not None and self.knows_refund(provider_reference)
        ):
            return False
        refund = Refund(
            refund_id=refund_id,
            amount=amount,
            reason=self.check_refund(amount, reason),
            provider_reference=provider_reference,
        )
        self.trigger_event(self.Refunded, refund=refund)
        return True

    def check_refund(self, amount: Money, reason: str) -> str:
        """Raise unless a new refund of `amount` would be recorded; return its trimmed reason.
        Everything `refund` checks, so a provider is only asked for refunds we will record."""
        if self.status not in ("captured", "partially_refunded"):
            raise IllegalTransition(f"cannot refund a payment that is {self.status}")
        self._check_currency(amount)
        if amount.amount <= 0:
            raise InvalidValue("amount", "must be positive")
        if amount.amount > self.net.amount:
            raise RefundExceedsCaptured(
                f"only {self.net.amount} of the captured amount can still be refunded"
            )
        return required_text(reason, "reason")

    def check_void(self) -> None:
        """Raise unless the payment can be voided."""
        if not self.voidable:
            raise IllegalTransition(f"cannot void a payment that is {self.status}")

    def void(self) -> None:
        """Release an authorization that was not captured."""
        self.check_void()
        self.trigger_event(self.Voided)

    def fail(self, reason: str) -> None:
        """The provider declined or the attempt failed before any capture."""
        if self.status in ("pending", "requires_action", "authorized"):
            self.trigger_event(self.Failed, reason=reason.strip() or "failed")

    def note_provider_event(self, provider_event_id: str) -> bool:
        """Record a provider event id; False if it was applied before."""
        if provider_event_id in self.provider_events:
            return False
        self.trigger_event(self.ProviderEventNoted, provider_event_id=provider_event_id)
        return True

    def apply_provider_update(
        self, provider_event_id: str, state: str, *, capturable: int, received: int
    ) -> None:
        """Apply news from the provider once per event id, in whatever order it arrives.

        Only ever moves the payment forwards: a late "processing" after "succeeded" changes
        nothing, and a "succeeded" that arrives first authorizes and captures at once.
        """
        if not self.note_provider_event(provider_event_id):
            return
        if state == "failed":
            self.fail("declined by the provider")
        elif state == "canceled":
            if self.status in ("pending", "requires_action", "authorized"):
                self.void()
        elif state == "requires_action" and self.status == "pending":
            self.require_action()
        elif state in ("requires_capture", "succeeded") and self.status in _CAN_HOLD:
            # The provider's word is final: what it holds is received plus still capturable.
            held = min(received + capturable, self.amount.amount)
            if held > self.authorized.amount:
                self.trigger_event(self.Authorized, amount=Money(held, self.amount.currency))
            missing = min(received, self.amount.amount) - self.captured.amount
            if state == "succeeded" and missing > 0:  # a fact, even where a command may not
                self.trigger_event(self.Captured, amount=Money(missing, self.amount.currency))

    def _require_open(self, action: str) -> None:
        if self.status in _FINAL or _RANK.get(self.status, 9) >= _RANK["captured"]:
            raise IllegalTransition(f"cannot {action} a payment that is {self.status}")

    def _check_currency(self, amount: Money) -> None:
        if amount.currency != self.amount.currency:
            raise InvalidValue("currency", f"the payment is in {self.amount.currency}")


def amount_owed(order: Order) -> Money:
    """What the customer pays for the order: its total less credit."""
    return Money(max(order.total.amount - order.credit.amount, 0), order.currency)


def refund_shares(payments: Iterable[Payment], amount: Money) -> dict[UUID, int]:
    """`amount` split over `payments` in turn, none giving back more than it still holds;
    RefundExceedsCaptured when together they cannot."""
    shares: dict[UUID, int] = {}
    remaining = amount.amount
    for payment in payments:
        share = min(remaining, payment.net.amount)
        if share > 0:
            shares[payment.id] = share
            remaining -= share
    if remaining > 0:
        raise RefundExceedsCaptured(
            f"the order's payments can give back only {amount.amount - remaining}"
            f" of {amount.amount}"
        )
    return shares


def amount_due(order: Order, payments: Iterable[Payment]) -> Money:
    """What an order still needs: what it owes less what its active payments cover (what they
    hold and what they may still capture)."""
    covered = sum(payment.covers.amount for payment in payments if payment.active)
    return Money(max(amount_owed(order).amount - covered, 0), order.currency)


def check_capture_for_order(
    order: Order, payments: Iterable[Payment], payment: Payment, amount: Money | None = None
) -> Money:
    """What capturing `amount` of `payment` would take (all it may when None), or raise: a
    cancelled order's money is not taken, and the order's payments (`payments`) never net
    more than it owes."""
    if order.status == "cancelled":
        raise IllegalTransition("cannot capture a payment of a cancelled order")
    amount = payment.check_capture(amount)
    others = sum(p.net.amount for p in payments if p.id != payment.id)
    left = amount_owed(order).amount - others - payment.net.amount
    if amount.amount > left:
        raise CaptureExceedsOrder(f"the order owes only {max(left, 0)} more")
    return amount


def settle(order: Order, payments: Iterable[Payment]) -> None:
    """Record the order's payment status from what its payments captured and refunded
    against what it owes (credit counts as paid); a pending order that is now paid is
    confirmed."""
    captured = [p for p in payments if p.captured.amount]
    paid = Money(sum(p.captured.amount for p in captured), order.currency)
    refunded = Money(sum(p.refunded.amount for p in captured), order.currency)
    owed = amount_owed(order)
    status = (
        "paid" if not owed.amount and not captured else payment_status_for(owed, paid, refunded)
    )
    order.record_payment_status(status)
    if status == "paid" and order.status == "pending":
        order.confirm()
