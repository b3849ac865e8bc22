"""Returns (RMA): requested, approved or rejected, received (partly), refunded or exchanged."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.errors import IllegalTransition, InvalidValue
from domain.values import positive_quantity, required_text

Condition = Literal["sellable", "damaged"]
Resolution = Literal["refund", "exchange"]
ReturnStatus = Literal[
    "requested",
    "approved",
    "rejected",
    "partially_received",
    "received",
    "refunded",
    "exchanged",
    "closed",
    "cancelled",
]


@dataclass(frozen=True)
class ReturnItem:
    """Units of one product coming back, why, and in what state."""

    product_id: UUID
    quantity: int
    reason: str
    condition: str


@dataclass(frozen=True)
class ReceivedItem:
    """Units of one product that arrived back."""

    product_id: UUID
    quantity: int


@dataclass(frozen=True)
class RefundUnderWay:
    """A refund decided and not yet recorded as paid: what each payment gives back, under
    refund ids made of `refund_id` and the payment's id."""

    refund_id: str
    shares: dict[UUID, int]

    @property
    def amount(self) -> int:
        """The whole refund."""
        return sum(self.shares.values())


class Return(Aggregate):
    """A return merchandise authorization for lines of one order."""

    class Requested(Aggregate.Created):
        order_id: UUID
        items: list[ReturnItem]
        resolution: str
        location_id: UUID

    @event(Requested)
    def __init__(
        self, order_id: UUID, items: list[ReturnItem], resolution: str, location_id: UUID
    ) -> None:
        self.order_id = order_id
        self.items = list(items)
        self.resolution = resolution
        self.location_id = location_id
        self.status: ReturnStatus = "requested"
        self.received: dict[UUID, int] = {}
        self.refunded_amount = 0
        self.refund_under_way: RefundUnderWay | None = None
        self.refunds_started = 0
        self.replacement_order_id: UUID | None = None

    @classmethod
    def request(
        cls,
        *,
        return_id: UUID,
        order_id: UUID,
        items: list[ReturnItem],
        resolution: Resolution,
        location_id: UUID,
    ) -> Return:
        """A new RMA; the order must already have accepted the quantities."""
        if not items:
            raise InvalidValue("items", "a return needs at least one item")
        if len({item.product_id for item in items}) != len(items):
            raise InvalidValue("items", "each product may appear once")
        for item in items:
            positive_quantity(item.quantity, "items.quantity")
            required_text(item.reason, "items.reason")
            if item.condition not in ("sellable", "damaged"):
                raise InvalidValue("items.condition", "must be sellable or damaged")
        return cls._create(
            cls.Requested,
            id=return_id,
            order_id=order_id,
            items=items,
            resolution=resolution,
            location_id=location_id,
        )

    def outstanding(self) -> dict[UUID, int]:
        """Units still expected back, per product."""
        left = {i.product_id: i.quantity - self.received.get(i.product_id, 0) for i in self.items}
        return {product: quantity for product, quantity in left.items() if quantity > 0}

    def condition_of(self, product_id: UUID) -> str:
        """Whether the returned units of a product go back on the shelf."""
        return next(i.condition for i in self.items if i.product_id == product_id)

    class Approved(Aggregate.Event):
        def apply(self, rma: Return) -> None:
            rma.status = "approved"

    class Rejected(Aggregate.Event):
        reason: str

        def apply(self, rma: Return) -> None:
            rma.status = "rejected"

    class Cancelled(Aggregate.Event):
        def apply(self, rma: Return) -> None:
            rma.status = "cancelled"

    class ItemsReceived(Aggregate.Event):
        items: list[ReceivedItem]

        def apply(self, rma: Return) -> None:
            for item in self.items:
                rma.received[item.product_id] = rma.received.get(item.product_id, 0) + item.quantity
            rma.status = "partially_received" if rma.outstanding() else "received"

    class RefundStarted(Aggregate.Event):
        refund_id: str
        payment_ids: list[UUID]
        shares: list[int]

        def apply(self, rma: Return) -> None:
            shares = dict(zip(self.payment_ids, self.shares, strict=True))
            rma.refund_under_way = RefundUnderWay(self.refund_id, shares)
            rma.refunds_started += 1

    class Refunded(Aggregate.Event):
        amount: int

        def apply(self, rma: Return) -> None:
            rma.refund_under_way = None
            rma.refunded_amount += self.amount
            # A refund of the units back so far leaves the rest expected.
            rma.status = "partially_received" if rma.outstanding() else "refunded"

    class Exchanged(Aggregate.Event):
        replacement_order_id: UUID
        difference: int

        def apply(self, rma: Return) -> None:
            rma.replacement_order_id = self.replacement_order_id
            rma.status = "exchanged"

    class Closed(Aggregate.Event):
        def apply(self, rma: Return) -> None:
            rma.status = "closed"

    def approve(self) -> None:
        """requested → approved."""
        self._require("approve", "requested")
        self.trigger_event(self.Approved)

    def reject(self, reason: str) -> None:
        """requested → rejected (the order's returnable quantities come back)."""
        self._require("reject", "requested")
        self.trigger_event(self.Rejected, reason=reason.strip() or "rejected")

    def cancel(self) -> None:
        """Cancel from requested or approved."""
        self._require("cancel", "requested", "approved")
        self.trigger_event(self.Cancelled)

    def receive(self, items: dict[UUID, int] | None) -> list[ReceivedItem]:
        """Record units arriving (all outstanding when `items` is None)."""
        self._require("receive", "approved", "partially_received")
        outstanding = self.outstanding()
        wanted = outstanding if items is None else items
        if not wanted:
            raise InvalidValue("items", "nothing to receive")
        received = []
        for product_id, quantity in wanted.items():
            positive_quantity(quantity, "items.quantity")
            if quantity > outstanding.get(product_id, 0):
                raise InvalidValue(
                    "items.quantity",
                    f"only {outstanding.get(product_id, 0)} units of {product_id} are expected",
                )
            received.append(ReceivedItem(product_id=product_id, quantity=quantity))
        self.trigger_event(self.ItemsReceived, items=received)
        return received

    def check_refundable(self) -> None:
        """Raise unless the units received so far may be refunded (before any money moves)."""
        if self.resolution != "refund":
            raise IllegalTransition("this return is resolved by an exchange")
        self._require("refund", "received", "partially_received", "refunded")

    def check_exchangeable(self) -> None:
        """Raise unless a replacement may be placed for this return (before it is placed)."""
        if self.resolution != "exchange":
            raise IllegalTransition("this return is resolved by a refund")
        self._require("exchange", "received")

    def start_refund(self, shares: dict[UUID, int]) -> RefundUnderWay:
        """Decide a refund for units received, as what each payment gives back (before any
        money moves): one at a time, so that every attempt to pay it, however often repeated,
        pays the same under the same ids."""
        self.check_refundable()
        if self.refund_under_way is not None:
            raise IllegalTransition("a refund of this return is under way")
        if not shares or any(amount <= 0 for amount in shares.values()):
            raise InvalidValue("amount", "nothing to refund")
        self.trigger_event(
            self.RefundStarted,
            refund_id=f"return-refund:{self.id}:{self.refunds_started + 1}",
            payment_ids=list(shares),
            shares=list(shares.values()),
        )
        assert self.refund_under_way is not None
        return self.refund_under_way

    def record_refund(self, *, all_received_refunded: bool = True) -> None:
        """The refund under way went back; closes once everything is back and every unit
        received is refunded (units that arrive while a refund is under way are refunded
        next, by a refund of their own)."""
        if self.refund_under_way is None:
            raise IllegalTransition("no refund of this return is under way")
        self.trigger_event(self.Refunded, amount=self.refund_under_way.amount)
        if not self.outstanding() and all_received_refunded:
            self.trigger_event(self.Closed)

    def record_exchange(self, replacement_order_id: UUID, difference: int) -> None:
        """A replacement order was placed; closes the return."""
        self.check_exchangeable()
        self.trigger_event(
            self.Exchanged, replacement_order_id=replacement_order_id, difference=difference
        )
        self.trigger_event(self.Closed)

    def _require(self, action: str, *statuses: ReturnStatus) -> None:
        if self.status not in statuses:
            raise IllegalTransition(f"cannot {action} a return that is {self.status}")
