"""Stock of one product at one location."""

from __future__ import annotations

from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

from domain.errors import InsufficientStock, InvalidValue, Shortage
from domain.values import (
    Money,
    non_negative_money,
    non_negative_quantity,
    nonzero_delta,
    positive_quantity,
    required_text,
    value_of,
)

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
        # Units held per document (e.g. "order:<id>"): reserved ones are covered by stock,
        # backordered ones are promised beyond it.
        self.reservations: dict[str, int] = {}
        self.backorders: dict[str, int] = {}

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

    class Reserved(Aggregate.Event):
        document: str
        quantity: int
        backordered: int

        def apply(self, item: StockItem) -> None:
            item.reserved += self.quantity
            if self.quantity:
                item.reservations[self.document] = (
                    item.reservations.get(self.document, 0) + self.quantity
                )
            if self.backordered:
                item.backorders[self.document] = (
                    item.backorders.get(self.document, 0) + self.backordered
                )

    class Released(Aggregate.Event):
        document: str
        quantity: int
        backordered: int
        reason: str

        def apply(self, item: StockItem) -> None:
            item.reserved -= self.quantity
            _take(item.reservations, self.document, self.quantity)
            _take(item.backorders, self.document, self.backordered)

    class BackorderAllocated(Aggregate.Event):
        document: str
        quantity: int

        def apply(self, item: StockItem) -> None:
            item.reserved += self.quantity
            _take(item.backorders, self.document, self.quantity)
            item.reservations[self.document] = (
                item.reservations.get(self.document, 0) + self.quantity
            )

    class Issued(Aggregate.Event):
        document: str
        quantity: int
        reason: str

        def apply(self, item: StockItem) -> None:
            item.on_hand -= self.quantity
            item.reserved -= self.quantity
            _take(item.reservations, self.document, self.quantity)

    class TransferredOut(Aggregate.Event):
        quantity: int
        to_location_id: UUID
        document: str

        def apply(self, item: StockItem) -> None:
            item.on_hand -= self.quantity

    class TransferredIn(Aggregate.Event):
        quantity: int
        from_location_id: UUID
        document: str

        def apply(self, item: StockItem) -> None:
            item.on_hand += self.quantity

    class Counted(Aggregate.Event):
        counted: int
        quantity: int  # the delta that reconciles on hand to the count
        document: str | None

        def apply(self, item: StockItem) -> None:
            item.on_hand += self.quantity

    def receive(
        self, quantity: int, unit_cost: Money, *, reason: str = "receipt", document: str | None
    ) -> None:
        """Goods in: on hand grows by `quantity` at `unit_cost` each; what they are worth
        together must be an amount (Money's range)."""
        positive_quantity(quantity)
        value_of(quantity, non_negative_money(unit_cost, "unitCost"), "unitCost")
        self.trigger_event(
            self.Received,
            quantity=quantity,
            unit_cost=unit_cost,
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

    def reserve(self, quantity: int, *, document: str, allow_backorder: bool = False) -> int:
        """Hold units for a document; beyond available only when backorders are allowed.

        Returns how many of the units are backordered.
        """
        positive_quantity(quantity)
        covered = min(quantity, self.available)
        if covered < quantity and not allow_backorder:
            raise InsufficientStock(
                f"only {self.available} of {quantity} units available", [self._shortage(quantity)]
            )
        self.trigger_event(
            self.Reserved, document=document, quantity=covered, backordered=quantity - covered
        )
        return quantity - covered

    def allocate_backorder(self, *, document: str) -> None:
        """Cover a document's backordered units from available stock, as far as it goes."""
        quantity = min(self.backorders.get(document, 0), max(self.available, 0))
        if quantity:
            self.trigger_event(self.BackorderAllocated, document=document, quantity=quantity)

    def release(self, *, document: str, reason: str = "released") -> None:
        """Give back everything a document holds (reserved and backordered)."""
        quantity = self.reservations.get(document, 0)
        backordered = self.backorders.get(document, 0)
        if quantity or backordered:
            self.trigger_event(
                self.Released,
                document=document,
                quantity=quantity,
                backordered=backordered,
                reason=reason,
            )

    def issue(self, quantity: int, *, document: str, reason: str = "shipment") -> None:
        """Goods out against a document's reservation."""
        positive_quantity(quantity)
        held = self.reservations.get(document, 0)
        if quantity > held:
            raise InsufficientStock(
                f"{document} holds {held} reserved units here, cannot issue {quantity}",
                [self._shortage(quantity)],
            )
        self.trigger_event(self.Issued, document=document, quantity=quantity, reason=reason)

    def transfer_out(self, quantity: int, *, to_location_id: UUID, document: str) -> None:
        """Send unreserved units to another location (saved with the receiving side)."""
        positive_quantity(quantity)
        if to_location_id == self.location_id:
            raise InvalidValue("toLocationId", "must differ from the source location")
        if quantity > self.available:
            raise InsufficientStock(
                f"only {self.available} units available to transfer", [self._shortage(quantity)]
            )
        self.trigger_event(
            self.TransferredOut, quantity=quantity, to_location_id=to_location_id, document=document
        )

    def transfer_in(self, quantity: int, *, from_location_id: UUID, document: str) -> None:
        """Receive units sent from another location."""
        if from_location_id == self.location_id:
            raise InvalidValue("fromLocationId", "must differ from the receiving location")
        self.trigger_event(
            self.TransferredIn,
            quantity=positive_quantity(quantity),
            from_location_id=from_location_id,
            document=document,
        )

    def count(self, counted: int, *, document: str | None) -> None:
        """Reconcile on hand to a physical count; refused if it would undercut reservations."""
        non_negative_quantity(counted, "counted")
        if counted < self.reserved:
            raise InsufficientStock(
                f"counted {counted} but {self.reserved} units are reserved",
                [self._shortage(self.reserved - counted)],
            )
        if counted != self.on_hand:
            self.trigger_event(
                self.Counted, counted=counted, quantity=counted - self.on_hand, document=document
            )


def _take(held: dict[str, int], document: str, quantity: int) -> None:
    """Lower a document's holding, forgetting it at zero."""
    left = held.get(document, 0) - quantity
    if left > 0:
        held[document] = left
    else:
        held.pop(document, None)
