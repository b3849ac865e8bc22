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

    def capture(self, amount: Money | None = None) -> Money:
        """Take (part of) the authorized money; never more than authorized in total."""
        if self.status not in ("authorized", "captured"):
            raise IllegalTransition(f"cannot capture a payment that is {self.status}")
        remaining = self.authorized - self.captured
        amount = amount or remaining
        self._check_currency(amount)
        if amount.amount <= 0:
            raise InvalidValue("amount", "must be positive")
        if amount.amount > remaining.amount:
            raise Conflict(f"only {remaining.amount} of the authorized amount is left to capture")
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
        if self.status not in ("captured", "partially_refunded"):
            raise IllegalTransition(f"cannot refund a payment that is {self.status}")
        self._check_currency(amount)
        if amount.amount <= 0:
            raise InvalidValue("amount", "must be positive")
        if amount.amount > self.net.amount:
            raise RefundExceedsCaptured(
                f"only {self.net.amount} of the captured amount can still be refunded"
            )
        refund = Refund(
            refund_id=refund_id,
            amount=amount,
            reason=required_text(reason, "reason"),
            provider_reference=provider_reference,
        )
        self.trigger_event(self.Refunded, refund=refund)
        return True

    def void(self) -> None:
        """Release an authorization that was not captured."""
        if self.status not in ("pending", "requires_action", "authorized"):
            raise IllegalTransition(f"cannot void a payment that is {self.status}")
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
            if state == "succeeded" and missing > 0:
                self.capture(Money(missing, self.amount.currency))

    def _require_open(self, action: str) -> None:
        if self.status in _FINAL or _RANK.get(self.status, 9) >= _RANK["captured"]:
            raise IllegalTransition(f"cannot {action} a payment that is {self.status}")

    def _check_currency(self, amount: Money) -> None:
        if amount.currency != self.amount.currency:
            raise InvalidValue("currency", f"the payment is in {self.amount.currency}")


def amount_due(order: Order, payments: Iterable[Payment]) -> Money:
    """What an order still needs: its total less credit and what its active payments cover."""
    covered = 0
    for payment in payments:
        if payment.active:
            covered += payment.net.amount if payment.captured.amount else payment.amount.amount
    return Money(max(order.total.amount - order.credit.amount - covered, 0), order.currency)


def settle(order: Order, payments: Iterable[Payment]) -> None:
    """Record the order's payment status from what its payments captured and refunded; a
    pending order that is now paid is confirmed."""
    captured = [p for p in payments if p.captured.amount]
    paid = Money(sum(p.captured.amount for p in captured), order.currency)
    refunded = Money(sum(p.refunded.amount for p in captured), order.currency)
    status = payment_status_for(order.total, paid, refunded)
    order.record_payment_status(status)
    if status == "paid" and order.status == "pending":
        order.confirm()
