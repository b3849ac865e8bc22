"""Sales orders: priced lines, a status lifecycle and partial shipments."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.errors import Conflict, IllegalTransition, InvalidValue
from domain.values import Money, positive_quantity, required_text

OrderStatus = Literal["pending", "confirmed", "processing", "shipped", "delivered", "cancelled"]
FulfilmentStatus = Literal["unfulfilled", "partially_shipped", "shipped"]
PaymentStatus = Literal["unpaid", "partially_paid", "paid", "partially_refunded", "refunded"]

BASIS_POINTS = 10_000


@dataclass(frozen=True)
class OrderLine:
    """A product at the price it had when the order was placed."""

    product_id: UUID
    sku: str
    name: str
    quantity: int
    unit_price: Money
    backordered: int = 0

    @property
    def line_total(self) -> Money:
        """Unit price times quantity."""
        return self.unit_price.times(self.quantity)


@dataclass(frozen=True)
class ShipmentItem:
    """Units of one product in a shipment."""

    product_id: UUID
    quantity: int


def tax_on(amount: Money, rate_basis_points: int) -> Money:
    """Tax at a rate in basis points, rounded half up to the minor unit."""
    tax, remainder = divmod(amount.amount * rate_basis_points, BASIS_POINTS)
    if remainder * 2 >= BASIS_POINTS:
        tax += 1
    return Money(tax, amount.currency)


def merge_lines(requested: list[tuple[UUID, int]]) -> dict[UUID, int]:
    """Sum quantities of the same product, keeping first-seen order; reject empty orders."""
    if not requested:
        raise InvalidValue("items", "an order needs at least one line")
    merged: dict[UUID, int] = {}
    for product_id, quantity in requested:
        positive_quantity(quantity, "items.quantity")
        merged[product_id] = merged.get(product_id, 0) + quantity
    for quantity in merged.values():
        positive_quantity(quantity, "items.quantity")
    return merged


def _check_lines(lines: list[OrderLine], currency: str, tax_rate_basis_points: int) -> None:
    """Distinct products, positive quantities, one currency, a total within Money's range."""
    if not lines:
        raise InvalidValue("items", "an order needs at least one line")
    if len({line.product_id for line in lines}) != len(lines):
        raise InvalidValue("items", "each product may appear on one line only")
    subtotal = Money(0, currency)
    for line in lines:
        positive_quantity(line.quantity, "items.quantity")
        if line.unit_price.currency != currency:
            priced_in = line.unit_price.currency
            raise InvalidValue("currency", f"{line.sku} is priced in {priced_in}")
        subtotal = subtotal + line.line_total  # raises InvalidValue beyond the range
    _ = subtotal + tax_on(subtotal, tax_rate_basis_points)


class Order(Aggregate):
    """A customer's order; stock for its lines is reserved in the same save."""

    class Placed(Aggregate.Created):
        order_number: str
        customer_id: UUID
        location_id: UUID
        currency: str
        lines: list[OrderLine]
        shipping_address: str
        tax_rate_basis_points: int

    @event(Placed)
    def __init__(
        self,
        order_number: str,
        customer_id: UUID,
        location_id: UUID,
        currency: str,
        lines: list[OrderLine],
        shipping_address: str,
        tax_rate_basis_points: int,
    ) -> None:
        self.order_number = order_number
        self.customer_id = customer_id
        self.location_id = location_id
        self.currency = currency
        self.lines = list(lines)
        self.shipping_address = shipping_address
        self.tax_rate_basis_points = tax_rate_basis_points
        self.status: OrderStatus = "pending"
        self.payment_status: PaymentStatus = "unpaid"
        self.shipped: dict[UUID, int] = {}
        self.shipment_count = 0
        self.payment_ids: list[UUID] = []
        self.returned: dict[UUID, int] = {}  # units under a return (not rejected/cancelled)
        # Units of each return whose value went back to the customer (refunded or credited).
        self.credited: dict[UUID, dict[UUID, int]] = {}
        self.credited_amount = Money(0, currency)  # what went back for them
        self.credit = Money(0, currency)

    @classmethod
    def place(
        cls,
        *,
        order_id: UUID,
        order_number: str,
        customer_id: UUID,
        location_id: UUID,
        currency: str,
        lines: list[OrderLine],
        shipping_address: str,
        tax_rate_basis_points: int,
    ) -> Order:
        """A pending order; lines must already be priced and reserved under `order_id`."""
        if not 0 <= tax_rate_basis_points <= BASIS_POINTS:
            raise InvalidValue("taxRate", "must be between 0 and 100 %")
        _check_lines(lines, currency, tax_rate_basis_points)
        return cls._create(
            cls.Placed,
            id=order_id,
            order_number=order_number,
            customer_id=customer_id,
            location_id=location_id,
            currency=currency,
            lines=lines,
            shipping_address=required_text(shipping_address, "shippingAddress", 1000),
            tax_rate_basis_points=tax_rate_basis_points,
        )

    @property
    def subtotal(self) -> Money:
        """Sum of line totals, before tax."""
        total = Money(0, self.currency)
        for line in self.lines:
            total = total + line.line_total
        return total

    @property
    def tax(self) -> Money:
        """Tax on the subtotal at the rate in force when the order was placed."""
        return tax_on(self.subtotal, self.tax_rate_basis_points)

    @property
    def total(self) -> Money:
        """What the customer owes."""
        return self.subtotal + self.tax

    @property
    def fulfilment_status(self) -> FulfilmentStatus:
        """Derived from shipped quantities."""
        if not self.shipped:
            return "unfulfilled"
        if all(self.shipped.get(line.product_id, 0) >= line.quantity for line in self.lines):
            return "shipped"
        return "partially_shipped"

    def outstanding(self) -> dict[UUID, int]:
        """Units of each product not shipped yet."""
        left = {
            line.product_id: line.quantity - self.shipped.get(line.product_id, 0)
            for line in self.lines
        }
        return {product_id: quantity for product_id, quantity in left.items() if quantity > 0}

    class LinesChanged(Aggregate.Event):
        lines: list[OrderLine]

        def apply(self, order: Order) -> None:
            order.lines = list(self.lines)

    class Confirmed(Aggregate.Event):
        def apply(self, order: Order) -> None:
            order.status = "confirmed"

    class ProcessingStarted(Aggregate.Event):
        def apply(self, order: Order) -> None:
            order.status = "processing"

    class ShipmentDispatched(Aggregate.Event):
        shipment_number: int
        items: list[ShipmentItem]
        carrier: str
        tracking_number: str

        def apply(self, order: Order) -> None:
            for item in self.items:
                order.shipped[item.product_id] = (
                    order.shipped.get(item.product_id, 0) + item.quantity
                )
            order.shipment_count = self.shipment_number
            if order.fulfilment_status == "shipped":
                order.status = "shipped"

    class Delivered(Aggregate.Event):
        def apply(self, order: Order) -> None:
            order.status = "delivered"

    class Cancelled(Aggregate.Event):
        reason: str

        def apply(self, order: Order) -> None:
            order.status = "cancelled"

    class ReturnOpened(Aggregate.Event):
        return_id: UUID
        items: list[ShipmentItem]

        def apply(self, order: Order) -> None:
            for item in self.items:
                order.returned[item.product_id] = (
                    order.returned.get(item.product_id, 0) + item.quantity
                )

    class ReturnReleased(Aggregate.Event):
        return_id: UUID
        items: list[ShipmentItem]

        def apply(self, order: Order) -> None:
            for item in self.items:
                left = order.returned.get(item.product_id, 0) - item.quantity
                if left > 0:
                    order.returned[item.product_id] = left
                else:
                    order.returned.pop(item.product_id, None)

    class ReturnCredited(Aggregate.Event):
        return_id: UUID
        items: list[ShipmentItem]
        amount: Money

        def apply(self, order: Order) -> None:
            credited = order.credited.setdefault(self.return_id, {})
            for item in self.items:
                credited[item.product_id] = credited.get(item.product_id, 0) + item.quantity
            order.credited_amount = order.credited_amount + self.amount

    class CreditApplied(Aggregate.Event):
        amount: Money
        reason: str

        def apply(self, order: Order) -> None:
            order.credit = order.credit + self.amount

    class PaymentStarted(Aggregate.Event):
        payment_id: UUID

        def apply(self, order: Order) -> None:
            order.payment_ids.append(self.payment_id)

    class PaymentStatusChanged(Aggregate.Event):
        payment_status: str

        def apply(self, order: Order) -> None:
            order.payment_status = self.payment_status  # type: ignore[assignment]

    def change_lines(self, lines: list[OrderLine]) -> None:
        """Replace the lines (only while pending; stock is re-reserved by the caller)."""
        self._require("change lines", "pending")
        _check_lines(lines, self.currency, self.tax_rate_basis_points)
        if lines != self.lines:
            self.trigger_event(self.LinesChanged, lines=lines)

    def confirm(self) -> None:
        """pending → confirmed."""
        self._require("confirm", "pending")
        self.trigger_event(self.Confirmed)

    def start_processing(self) -> None:
        """confirmed → processing."""
        self._require("start processing", "confirmed")
        self.trigger_event(self.ProcessingStarted)

    def ship(
        self, items: dict[UUID, int] | None, *, carrier: str, tracking_number: str
    ) -> list[ShipmentItem]:
        """Record a (partial) shipment from confirmed or processing; return what it holds."""
        self._require("ship", "confirmed", "processing")
        outstanding = self.outstanding()
        wanted = outstanding if items is None else items
        if not wanted:
            raise InvalidValue("items", "nothing to ship")
        shipment = []
        for product_id, quantity in wanted.items():
            positive_quantity(quantity, "items.quantity")
            if quantity > outstanding.get(product_id, 0):
                raise InvalidValue(
                    "items.quantity",
                    f"only {outstanding.get(product_id, 0)} units of {product_id} left to ship",
                )
            shipment.append(ShipmentItem(product_id=product_id, quantity=quantity))
        self.trigger_event(
            self.ShipmentDispatched,
            shipment_number=self.shipment_count + 1,
            items=shipment,
            carrier=carrier.strip(),
            tracking_number=tracking_number.strip(),
        )
        return shipment

    def deliver(self) -> None:
        """shipped → delivered."""
        self._require("mark delivered", "shipped")
        self.trigger_event(self.Delivered)

    def cancel(self, reason: str) -> None:
        """Cancel from pending, confirmed, or processing with nothing shipped."""
        self._require("cancel", "pending", "confirmed", "processing")
        if self.shipped:
            raise IllegalTransition("an order with shipped items cannot be cancelled")
        self.trigger_event(self.Cancelled, reason=reason.strip() or "cancelled")

    def returnable(self) -> dict[UUID, int]:
        """Units shipped and not already under a return, per product."""
        left = {p: q - self.returned.get(p, 0) for p, q in self.shipped.items()}
        return {product: quantity for product, quantity in left.items() if quantity > 0}

    def open_return(self, return_id: UUID, items: dict[UUID, int]) -> None:
        """Accept units for a return: never more than shipped minus already returned."""
        returnable = self.returnable()
        for product_id, quantity in items.items():
            positive_quantity(quantity, "items.quantity")
            if quantity > returnable.get(product_id, 0):
                raise InvalidValue(
                    "items.quantity",
                    f"only {returnable.get(product_id, 0)} units of {product_id} can be returned",
                )
        self.trigger_event(
            self.ReturnOpened,
            return_id=return_id,
            items=[ShipmentItem(product_id=p, quantity=q) for p, q in items.items()],
        )

    def release_return(self, return_id: UUID, items: dict[UUID, int]) -> None:
        """A rejected or cancelled return gives its units back to what can be returned."""
        self.trigger_event(
            self.ReturnReleased,
            return_id=return_id,
            items=[ShipmentItem(product_id=p, quantity=q) for p, q in items.items()],
        )

    def unit_price_of(self, product_id: UUID) -> Money:
        """What the customer paid per unit of a product on this order."""
        for line in self.lines:
            if line.product_id == product_id:
                return line.unit_price
        raise InvalidValue("productId", f"product {product_id} is not on the order")

    def value_of(self, items: dict[UUID, int]) -> Money:
        """What units of this order cost the customer, tax included."""
        net = Money(0, self.currency)
        for product_id, quantity in items.items():
            net = net + self.unit_price_of(product_id).times(quantity)
        return net + tax_on(net, self.tax_rate_basis_points)

    def uncredited(self, return_id: UUID, received: dict[UUID, int]) -> dict[UUID, int]:
        """Units a return has received whose value has not gone back yet, per product."""
        credited = self.credited.get(return_id, {})
        left = {p: q - credited.get(p, 0) for p, q in received.items()}
        return {product: quantity for product, quantity in left.items() if quantity > 0}

    def _credited_units(self) -> dict[UUID, int]:
        """Units of all returns whose value went back, per product."""
        units: dict[UUID, int] = {}
        for credited in self.credited.values():
            for product_id, quantity in credited.items():
                units[product_id] = units.get(product_id, 0) + quantity
        return units

    def return_value(self, items: dict[UUID, int]) -> Money:
        """What returned units are worth to the customer, tax included: the value of every
        unit credited so far and these, less the value of those credited before. Tax is
        rounded on the order's whole, so returns taken one by one add up to exactly what the
        units cost together, and all of an order's units to its total, never more."""
        before = self._credited_units()
        after = dict(before)
        for product_id, quantity in items.items():
            after[product_id] = after.get(product_id, 0) + quantity
        return self.value_of(after) - self.value_of(before)

    def credit_return(
        self, return_id: UUID, received: dict[UUID, int], refunded_before: int
    ) -> Money:
        """Credit the customer with the units a return received whose value has not gone
        back yet, and say what they are worth (`return_value`).

        A return refunded before the order kept count of credited units (money went back, no
        units recorded) is valued as it was then: all it received, less what was refunded.
        """
        if return_id not in self.credited and refunded_before > 0:
            items = {p: q for p, q in received.items() if q > 0}
            amount = self.value_of(items) - Money(refunded_before, self.currency)
            if amount.amount <= 0:
                items = {}  # all it received went back then
        else:
            items = self.uncredited(return_id, received)
            amount = self.return_value(items)
        if not items or amount.amount < 0:
            raise Conflict("nothing received is left to credit")
        # Never more than the order's total in all (returns refunded before units were
        # counted are valued apart, and could otherwise take a unit of rounding twice).
        room = self.total.amount - self.credited_amount.amount
        amount = Money(max(0, min(amount.amount, room)), self.currency)
        credited, returned = self._credited_units(), self.returned
        for product_id, quantity in items.items():
            if credited.get(product_id, 0) + quantity > returned.get(product_id, 0):
                raise InvalidValue(
                    "items.quantity", f"only {returned.get(product_id, 0)} units are returned"
                )
        self.trigger_event(
            self.ReturnCredited,
            return_id=return_id,
            items=[ShipmentItem(product_id=p, quantity=q) for p, q in items.items()],
            amount=amount,
        )
        return amount

    def apply_credit(self, amount: Money, reason: str) -> None:
        """Lower what the customer owes (e.g. returned goods counted towards an exchange)."""
        if amount.currency != self.currency or amount.amount <= 0:
            raise InvalidValue("amount", f"a positive amount in {self.currency}")
        self.trigger_event(self.CreditApplied, amount=amount, reason=reason)

    def start_payment(self, payment_id: UUID) -> None:
        """Attach a new payment (not to a cancelled order)."""
        if self.status == "cancelled":
            raise IllegalTransition("a cancelled order cannot be paid")
        self.trigger_event(self.PaymentStarted, payment_id=payment_id)

    def record_payment_status(self, payment_status: PaymentStatus) -> None:
        """Note the payment status derived from the order's payments."""
        if payment_status != self.payment_status:
            self.trigger_event(self.PaymentStatusChanged, payment_status=payment_status)

    def _require(self, action: str, *statuses: OrderStatus) -> None:
        if self.status not in statuses:
            raise IllegalTransition(
                f"cannot {action} an order that is {self.status}", current_status=self.status
            )


def payment_status_for(total: Money, paid: Money, refunded: Money) -> PaymentStatus:
    """An order's payment status from what its payments captured and refunded."""
    if refunded.amount > 0:
        return "refunded" if refunded.amount >= paid.amount else "partially_refunded"
    if paid.amount <= 0:
        return "unpaid"
    return "paid" if paid.amount >= total.amount else "partially_paid"
