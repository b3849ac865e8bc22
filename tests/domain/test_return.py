"""Return invariants: never more back than shipped minus returned; legal transitions only."""

from __future__ import annotations

from uuid import UUID, uuid4

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from strategies import in_memory_application, replay, save_and_reload, state_of

from domain.errors import DomainError, IllegalTransition, InvalidValue
from domain.orders import Order, OrderLine
from domain.returns import Return, ReturnItem
from domain.values import Money

PRODUCTS = [UUID(int=n) for n in (1, 2)]


def _shipped_order() -> Order:
    lines = [OrderLine(p, f"P{i}", "P", 5, Money(100, "EUR")) for i, p in enumerate(PRODUCTS)]
    order = Order.place(
        order_id=uuid4(),
        order_number="ORD-1",
        customer_id=UUID(int=9),
        location_id=UUID(int=8),
        currency="EUR",
        lines=lines,
        shipping_address="x",
        tax_rate_basis_points=0,
    )
    order.confirm()
    order.ship({PRODUCTS[0]: 5, PRODUCTS[1]: 3}, carrier="", tracking_number="")
    return order


class ReturnMachine(RuleBasedStateMachine):
    """Several returns against one order; refused commands change nothing."""

    def __init__(self) -> None:
        super().__init__()
        self.order = _shipped_order()
        self.returns: list[Return] = []

    def _attempt(self, target: Return | Order, command: object) -> None:
        before = state_of(target)
        try:
            command()  # type: ignore[operator]
        except DomainError:
            assert state_of(target) == before

    @rule(
        product=st.sampled_from(PRODUCTS),
        quantity=st.integers(-1, 6),
        resolution=st.sampled_from(["refund", "exchange"]),
    )
    def request(self, product: UUID, quantity: int, resolution: str) -> None:
        before = state_of(self.order)
        try:
            rma = Return.request(
                return_id=uuid4(),
                order_id=self.order.id,
                location_id=UUID(int=8),
                items=[ReturnItem(product, quantity, "reason", "sellable")],
                resolution=resolution,  # type: ignore[arg-type]
            )
            self.order.open_return(rma.id, {product: quantity})
        except DomainError:
            assert state_of(self.order) == before
            return
        self.returns.append(rma)

    @precondition(lambda self: bool(self.returns))
    @rule(
        data=st.data(),
        action=st.sampled_from(
            [
                *["approve", "reject", "cancel", "receive", "receive_one"],
                *["start_refund", "refund", "exchange"],
            ]
        ),
    )
    def act(self, data: st.DataObject, action: str) -> None:
        rma = self.returns[data.draw(st.integers(0, len(self.returns) - 1))]
        releases = action in ("reject", "cancel")
        items = {i.product_id: i.quantity for i in rma.items}
        commands = {
            "approve": rma.approve,
            "reject": lambda: rma.reject("no"),
            "cancel": rma.cancel,
            "receive": lambda: rma.receive(None),
            "receive_one": lambda: rma.receive({rma.items[0].product_id: 1}),
            "start_refund": lambda: rma.start_refund({PAYMENT: 100}),
            "refund": rma.record_refund,
            "exchange": lambda: rma.record_exchange(uuid4(), 0),
        }
        status = rma.status
        self._attempt(rma, commands[action])
        if releases and rma.status != status:
            self.order.release_return(rma.id, items)

    @invariant()
    def never_more_back_than_shipped(self) -> None:
        open_returns = [r for r in self.returns if r.status not in ("rejected", "cancelled")]
        for product in PRODUCTS:
            under_return = sum(
                i.quantity for r in open_returns for i in r.items if i.product_id == product
            )
            assert self.order.returned.get(product, 0) == under_return
            assert under_return <= self.order.shipped.get(product, 0)
        for rma in self.returns:
            for item in rma.items:
                assert 0 <= rma.received.get(item.product_id, 0) <= item.quantity

    @invariant()
    def units_still_expected_can_be_received(self) -> None:
        for rma in self.returns:
            if rma.received and rma.outstanding():  # refunded in part or not
                assert rma.status == "partially_received"

    @invariant()
    def replay_gives_the_same_state(self) -> None:
        for rma in self.returns:
            assert state_of(replay(Return, list(rma.pending_events))) == state_of(rma)

    def teardown(self) -> None:
        app = in_memory_application()
        assert state_of(save_and_reload(app, self.order)) == state_of(self.order)
        for rma in self.returns:
            assert state_of(save_and_reload(app, rma)) == state_of(rma)


PAYMENT = UUID(int=77)


def _three_units_approved() -> Return:
    order = _shipped_order()
    rma = Return.request(
        return_id=uuid4(),
        order_id=order.id,
        location_id=UUID(int=8),
        items=[ReturnItem(PRODUCTS[0], 3, "reason", "sellable")],
        resolution="refund",
    )
    rma.approve()
    return rma


def test_the_rest_arrives_after_a_refund_of_the_first_units() -> None:
    rma = _three_units_approved()
    rma.receive({PRODUCTS[0]: 1})
    rma.start_refund({PAYMENT: 100})
    rma.record_refund()
    assert (rma.status, rma.refunded_amount) == ("partially_received", 100)
    rma.receive(None)
    assert rma.status == "received"
    rma.start_refund({PAYMENT: 200})
    rma.record_refund()
    assert (rma.status, rma.refunded_amount) == ("closed", 300)


def test_units_arriving_while_a_refund_is_under_way_keep_the_return_open() -> None:
    rma = _three_units_approved()
    rma.receive({PRODUCTS[0]: 1})
    rma.receive(None)  # the rest arrives before the first unit's refund is recorded
    rma.start_refund({PAYMENT: 100})
    rma.record_refund(all_received_refunded=False)
    assert (rma.status, rma.refunded_amount) == ("refunded", 100)
    rma.start_refund({PAYMENT: 200})  # the units that came meanwhile
    rma.record_refund()
    assert (rma.status, rma.refunded_amount) == ("closed", 300)


TestReturnMachine = ReturnMachine.TestCase
TestReturnMachine.settings = settings(max_examples=60, stateful_step_count=30, deadline=None)


def test_one_refund_at_a_time_and_only_what_was_started_is_recorded() -> None:
    rma = _three_units_approved()
    rma.receive(None)
    with pytest.raises(IllegalTransition):
        rma.record_refund()  # nothing started
    rma.start_refund({PAYMENT: 300})
    with pytest.raises(IllegalTransition):
        rma.start_refund({PAYMENT: 300})  # a second decision while the first is under way
    rma.record_refund()
    assert (rma.status, rma.refunded_amount, rma.refund_under_way) == ("closed", 300, None)
    assert rma.refunds_started == 1


def test_each_refund_has_its_own_ids_and_shares() -> None:
    rma = _three_units_approved()
    rma.receive({PRODUCTS[0]: 1})
    first = rma.start_refund({PAYMENT: 60, UUID(int=78): 40})
    assert (first.amount, first.shares) == (100, {PAYMENT: 60, UUID(int=78): 40})
    rma.record_refund()
    rma.receive(None)
    second = rma.start_refund({PAYMENT: 200})
    assert second.refund_id != first.refund_id
    other = _three_units_approved()
    other.receive(None)
    with pytest.raises(InvalidValue):
        other.start_refund({PAYMENT: 0})
