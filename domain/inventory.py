"""Stock of one product at one location."""

from __future__ import annotations

from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

from domain.errors import InsufficientStock, Shortage
from domain.values import Money, non_negative_money, nonzero_delta, positive_quantity, required_text

_NAMESPACE = uuid5(NAMESPACE_URL, "https://pms.example/stock-items")


class StockItem(Aggregate):
    """On hand and reserved units of a product at a location; available never goes negative.

    Every movement event names its reason and the document that caused it; who did it is in
    the event's stored metadata.
    """

    class Opened(Aggregate.Created):
        product_id: UUID
        location_id: UUID

    @event(Opened)
    def __init__(self, product_id: UUID, location_id: UUID) -> None:
        self.product_id = product_id
        self.location_id = location_id
        self.on_hand = 0
        self.reserved = 0

    @staticmethod
    def create_id(product_id: UUID, location_id: UUID) -> UUID:
        """One stock item per product × location, so its id follows from them."""
        return uuid5(_NAMESPACE, f"{product_id}:{location_id}")

    @classmethod
    def open(cls, product_id: UUID, location_id: UUID) -> StockItem:
        """A new, empty stock item."""
        return cls(product_id=product_id, location_id=location_id)

    @property
    def available(self) -> int:
        """Units that can still be reserved."""
        return self.on_hand - self.reserved

    class Received(Aggregate.Event):
        quantity: int
        unit_cost: Money
        reason: str
        document: str | None

        def apply(self, item: StockItem) -> None:
            item.on_hand += self.quantity

    class Adjusted(Aggregate.Event):
        quantity: int
        reason: str
        document: str | None

        def apply(self, item: StockItem) -> None:
            item.on_hand += self.quantity

    def receive(
        self, quantity: int, unit_cost: Money, *, reason: str = "receipt", document: str | None
    ) -> None:
        """Goods in: on hand grows by `quantity` at `unit_cost` each."""
        self.trigger_event(
            self.Received,
            quantity=positive_quantity(quantity),
            unit_cost=non_negative_money(unit_cost, "unitCost"),
            reason=required_text(reason, "reason"),
            document=document,
        )

    def adjust(self, quantity: int, *, reason: str, document: str | None) -> None:
        """Correct on hand by a signed delta; never below what is reserved."""
        nonzero_delta(quantity)
        reason = required_text(reason, "reason")
        if quantity < 0 and -quantity > self.available:
            raise InsufficientStock(
                f"cannot remove {-quantity} units: only {self.available} available",
                [self._shortage(-quantity)],
            )
        self.trigger_event(self.Adjusted, quantity=quantity, reason=reason, document=document)

    def _shortage(self, requested: int) -> Shortage:
        return Shortage(
            product_id=str(self.product_id),
            location_id=str(self.location_id),
            requested=requested,
            available=self.available,
        )
