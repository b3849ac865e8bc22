"""Payment invariants: captured <= authorized, refunded <= captured, provider news applied once."""

from __future__ import annotations

from uuid import UUID, uuid4

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule
from strategies import in_memory_application, replay, save_and_reload, state_of

from domain.errors import DomainError
from domain.payments import Payment
from domain.values import Money


def _payment(amount: int = 1000) -> Payment:
    return Payment.start(
        payment_id=uuid4(),
        order_id=UUID(int=1),
        amount=Money(amount, "EUR"),
        method="card",
        provider="stripe",
    )


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
