"""Payment invariants: captured <= authorized, refunded <= captured, provider news applied once;
an order's payments never hold more than it owes, and a cancelled order's are never captured."""

from __future__ import annotations

from collections.abc import Callable
from uuid import UUID, uuid4

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from strategies import in_memory_application, replay, save_and_reload, state_of

from domain.errors import DomainError, IllegalTransition
from domain.orders import Order, OrderLine
from domain.payments import (
    CaptureExceedsOrder,
    Payment,
    Provider,
    amount_due,
    amount_owed,
    check_capture_for_order,
    settle,
)
from domain.values import Money

ORDER_ID = UUID(int=1)


def _payment(
    amount: int = 1000, provider: Provider = "stripe", order_id: UUID = ORDER_ID
) -> Payment:
    return Payment.start(
        payment_id=uuid4(),
        order_id=order_id,
        amount=Money(amount, "EUR"),
        method="card",
        provider=provider,
    )


def _order(total: int = 1000) -> Order:
    """A pending order of `total` EUR cents, tax free."""
    line = OrderLine(
        product_id=UUID(int=7),
        sku="SKU-7",
        name="Seven",
        quantity=1,
        unit_price=Money(total, "EUR"),
    )
    return Order.place(
        order_id=uuid4(),
        order_number="SO-000007",
        customer_id=UUID(int=100),
        location_id=UUID(int=200),
        currency="EUR",
        lines=[line],
        shipping_address="1 Main Street",
        tax_rate_basis_points=0,
    )


def _checkout(order: Order, payments: list[Payment], provider: Provider = "manual") -> Payment:
    """A payment of what the order still has due, attached to it."""
    payment = _payment(amount_due(order, payments).amount, provider, order.id)
    order.start_payment(payment.id)
    payments.append(payment)
    return payment


def _capture(order: Order, payments: list[Payment], payment: Payment, amount: int | None) -> None:
    """Capture as the capture command decides it: the order's rules, then the payment's."""
    wanted = None if amount is None else Money(amount, "EUR")
    payment.capture(check_capture_for_order(order, payments, payment, wanted))


class PaymentMachine(RuleBasedStateMachine):
    """Random commands and provider events; refused ones change nothing."""

    def __init__(self) -> None:
        super().__init__()
        self.payment = _payment()

    def _attempt(self, command: object) -> None:
        before = state_of(self.payment)
        pending = len(self.payment.pending_events)
        try:
            command()  # type: ignore[operator]
        except DomainError:
            assert state_of(self.payment) == before
            assert len(self.payment.pending_events) == pending

    @rule(amount=st.integers(-5, 1200))
    def authorize(self, amount: int) -> None:
        self._attempt(lambda: self.payment.authorize(Money(amount, "EUR")))

    @rule(amount=st.integers(-5, 1200))
    def capture(self, amount: int) -> None:
        self._attempt(lambda: self.payment.capture(Money(amount, "EUR")))

    @rule(amount=st.integers(-5, 1200), refund=st.sampled_from(["r1", "r2", "r3"]))
    def refund(self, amount: int, refund: str) -> None:
        self._attempt(lambda: self.payment.refund(refund, Money(amount, "EUR"), "test"))

    @rule()
    def void(self) -> None:
        self._attempt(self.payment.void)

    @rule(
        event=st.sampled_from(["e1", "e2", "e3", "e4"]),
        state=st.sampled_from(
            ["processing", "requires_action", "requires_capture", "succeeded", "failed", "canceled"]
        ),
        capturable=st.integers(0, 1000),
        received=st.integers(0, 1000),
    )
    def provider_news(self, event: str, state: str, capturable: int, received: int) -> None:
        seen = set(self.payment.provider_events)
        version = self.payment.version
        self._attempt(
            lambda: self.payment.apply_provider_update(
                event, state, capturable=capturable, received=received
            )
        )
        if event in seen:
            assert self.payment.version == version  # the same provider event never twice

    @invariant()
    def money_adds_up(self) -> None:
        p = self.payment
        assert 0 <= p.captured.amount <= p.authorized.amount <= p.amount.amount
        assert 0 <= p.refunded.amount <= p.captured.amount
        assert p.net.amount == p.captured.amount - p.refunded.amount

    @invariant()
    def replay_gives_the_same_state(self) -> None:
        rebuilt = replay(Payment, list(self.payment.pending_events))
        assert state_of(rebuilt) == state_of(self.payment)

    def teardown(self) -> None:
        expected = state_of(self.payment)
        assert state_of(save_and_reload(in_memory_application(), self.payment)) == expected


TestPaymentMachine = PaymentMachine.TestCase
TestPaymentMachine.settings = settings(max_examples=80, stateful_step_count=25, deadline=None)


def test_success_arriving_before_processing_captures_once() -> None:
    payment = _payment()
    payment.apply_provider_update("evt_2", "succeeded", capturable=0, received=1000)
    payment.apply_provider_update("evt_1", "processing", capturable=0, received=0)
    payment.apply_provider_update("evt_2", "succeeded", capturable=0, received=1000)
    assert payment.status == "captured"
    assert payment.captured == Money(1000, "EUR")


def test_refunds_never_exceed_what_was_captured() -> None:
    payment = _payment()
    payment.authorize()
    payment.capture(Money(600, "EUR"))
    assert payment.refund("a", Money(400, "EUR"), "damaged")
    with pytest.raises(DomainError):
        payment.refund("b", Money(201, "EUR"), "again")
    assert not payment.refund("a", Money(400, "EUR"), "damaged")  # same refund id: no-op
    assert payment.refunded == Money(400, "EUR")
    assert payment.status == "partially_refunded"


def test_a_part_captured_payment_still_covers_what_it_may_capture() -> None:
    order, payments = _order(1000), list[Payment]()
    first = _checkout(order, payments)
    first.authorize()
    _capture(order, payments, first, 500)
    assert amount_due(order, payments) == Money(0, "EUR")  # it can still capture the rest
    _capture(order, payments, first, None)
    assert sum(p.net.amount for p in payments) == 1000


def test_the_rest_a_stripe_capture_released_is_due_again() -> None:
    order, payments = _order(1000), list[Payment]()
    first = _checkout(order, payments, "stripe")
    first.authorize()
    _capture(order, payments, first, 700)
    with pytest.raises(IllegalTransition):
        first.capture(Money(100, "EUR"))  # Stripe captures a PaymentIntent once
    assert amount_due(order, payments) == Money(300, "EUR")


def test_a_cancelled_orders_payment_is_never_captured() -> None:
    order, payments = _order(1000), list[Payment]()
    payment = _checkout(order, payments)
    payment.authorize()
    order.cancel("changed my mind")
    with pytest.raises(IllegalTransition, match="cancelled order"):
        _capture(order, payments, payment, None)
    assert payment.captured == Money(0, "EUR")


def test_capture_never_takes_the_order_past_what_it_owes() -> None:
    order, payments = _order(1000), list[Payment]()
    payment = _checkout(order, payments)
    payment.authorize()
    order.apply_credit(Money(800, "EUR"), "returned goods")  # credited after the checkout
    with pytest.raises(CaptureExceedsOrder):
        _capture(order, payments, payment, None)
    _capture(order, payments, payment, 200)
    with pytest.raises(CaptureExceedsOrder):
        _capture(order, payments, payment, 1)


@pytest.mark.parametrize(
    ("credit", "captured", "expected"),
    [
        (1000, 0, ("paid", "confirmed")),
        (600, 400, ("paid", "confirmed")),
        (600, 300, ("partially_paid", "pending")),
        (0, 0, ("unpaid", "pending")),
    ],
)
def test_credit_counts_towards_what_the_order_owes(
    credit: int, captured: int, expected: tuple[str, str]
) -> None:
    order, payments = _order(1000), list[Payment]()
    if credit:
        order.apply_credit(Money(credit, "EUR"), "returned goods")
    if captured:
        payment = _checkout(order, payments)
        payment.authorize()
        _capture(order, payments, payment, captured)
    settle(order, payments)
    assert (order.payment_status, order.status) == expected


def _refund_stage(stage: str) -> Payment:
    payment = _payment(1000, "manual")
    if stage != "pending":
        payment.authorize()
    if stage == "voided":
        payment.void()
    if stage in ("captured", "partially_refunded"):
        payment.capture(Money(800, "EUR"))
    if stage == "partially_refunded":
        payment.refund("earlier", Money(300, "EUR"), "scratch")
    return payment


@given(
    stage=st.sampled_from(["pending", "authorized", "voided", "captured", "partially_refunded"]),
    amount=st.integers(-5, 900),
    currency=st.sampled_from(["EUR", "USD"]),
    reason=st.sampled_from(["damaged", "  late  ", "", "   ", "x" * 201]),
)
def test_a_refund_is_refused_exactly_when_its_check_refuses_it(
    stage: str, amount: int, currency: str, reason: str
) -> None:
    """What refund_payment checks before asking the provider is everything the refund checks."""
    payment = _refund_stage(stage)
    refund = Money(amount, currency)
    try:
        payment.check_refund(refund, reason)
    except DomainError as refused:
        before = state_of(payment)
        with pytest.raises(type(refused)):
            payment.refund("new", refund, reason)
        assert state_of(payment) == before
    else:
        assert payment.refund("new", refund, reason)


class OrderPaymentsMachine(RuleBasedStateMachine):
    """Checkouts, captures, refunds, voids and cancellation on one order and its payments."""

    def __init__(self) -> None:
        super().__init__()
        self.order = _order(1000)
        self.payments: list[Payment] = []

    def _attempt(self, command: Callable[[], object]) -> bool:
        before = [state_of(p) for p in self.payments], state_of(self.order)
        try:
            command()
        except DomainError:
            assert ([state_of(p) for p in self.payments], state_of(self.order)) == before
            return False
        return True

    def _pick(self, index: int) -> Payment:
        return self.payments[index % len(self.payments)]

    @precondition(lambda self: not self.payments)
    @rule(amount=st.integers(1, 1200))
    def credit(self, amount: int) -> None:
        self._attempt(lambda: self.order.apply_credit(Money(amount, "EUR"), "returned goods"))

    @rule(provider=st.sampled_from(["manual", "stripe"]))
    def checkout(self, provider: Provider) -> None:
        due = amount_due(self.order, self.payments)
        if due.amount > 0 and self.order.status != "cancelled":
            _checkout(self.order, self.payments, provider)

    @precondition(lambda self: self.payments)
    @rule(index=st.integers(0, 9), amount=st.integers(1, 1200))
    def authorize(self, index: int, amount: int) -> None:
        self._attempt(lambda: self._pick(index).authorize(Money(amount, "EUR")))

    @precondition(lambda self: self.payments)
    @rule(index=st.integers(0, 9), amount=st.none() | st.integers(-5, 1200))
    def capture(self, index: int, amount: int | None) -> None:
        payment = self._pick(index)
        if self._attempt(lambda: _capture(self.order, self.payments, payment, amount)):
            assert self.order.status != "cancelled"

    @precondition(lambda self: self.payments)
    @rule(index=st.integers(0, 9), amount=st.integers(-5, 1200))
    def refund(self, index: int, amount: int) -> None:
        payment = self._pick(index)
        self._attempt(lambda: payment.refund(str(uuid4()), Money(amount, "EUR"), "test"))

    @precondition(lambda self: self.payments)
    @rule(index=st.integers(0, 9))
    def void(self, index: int) -> None:
        self._attempt(self._pick(index).void)

    @rule()
    def cancel(self) -> None:
        self._attempt(lambda: self.order.cancel("test"))

    @invariant()
    def payments_never_hold_more_than_the_order_owes(self) -> None:
        owed = amount_owed(self.order).amount
        assert sum(p.net.amount for p in self.payments) <= owed
        assert sum(p.covers.amount for p in self.payments) <= owed
        assert all(0 <= p.net.amount <= p.covers.amount for p in self.payments)
        assert amount_due(self.order, self.payments).amount == max(
            owed - sum(p.covers.amount for p in self.payments), 0
        )


TestOrderPaymentsMachine = OrderPaymentsMachine.TestCase
TestOrderPaymentsMachine.settings = settings(max_examples=80, stateful_step_count=30, deadline=None)
