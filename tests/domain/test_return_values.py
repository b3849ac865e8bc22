"""What returned units are worth: returns taken one by one add up to exactly what the units
cost together (tax is rounded on the order's whole), and an order's units to its total."""

from __future__ import annotations

from uuid import UUID, uuid4

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.errors import Conflict, InvalidValue
from domain.orders import Order, OrderLine
from domain.values import Money

PRODUCTS = [UUID(int=n) for n in range(1, 4)]


def _shipped_order(quantities: list[int], prices: list[int], rate: int) -> Order:
    lines = [
        OrderLine(
            product_id=product_id,
            sku=f"SKU-{product_id.int}",
            name="P",
            quantity=quantity,
            unit_price=Money(price, "EUR"),
        )
        for product_id, quantity, price in zip(PRODUCTS, quantities, prices, strict=False)
    ]
    order = Order.place(
        order_id=uuid4(),
        order_number="ORD-000001",
        customer_id=uuid4(),
        location_id=uuid4(),
        currency="EUR",
        lines=lines,
        shipping_address="x",
        tax_rate_basis_points=rate,
    )
    order.confirm()
    order.ship(None, carrier="", tracking_number="")
    return order


@given(
    quantities=st.lists(st.integers(1, 6), min_size=1, max_size=3),
    prices=st.lists(st.integers(1, 10_000), min_size=3, max_size=3),
    rate=st.integers(0, 10_000),
    cuts=st.lists(st.integers(0, 2**16), max_size=20),
)
def test_returns_one_by_one_add_up_to_the_total(
    quantities: list[int], prices: list[int], rate: int, cuts: list[int]
) -> None:
    order = _shipped_order(quantities, prices, rate)
    units = [p for p, q in zip(PRODUCTS, quantities, strict=False) for _ in range(q)]
    credited = 0
    # Every unit comes back, in returns split where the strategy chose.
    returns: list[dict[UUID, int]] = []
    current: dict[UUID, int] = {}
    for index, product_id in enumerate(units):
        current[product_id] = current.get(product_id, 0) + 1
        if cuts and cuts[index % len(cuts)] % 2:
            returns.append(current)
            current = {}
    if current:
        returns.append(current)
    for items in returns:
        return_id = uuid4()
        order.open_return(return_id, items)
        value = order.return_value(items)
        assert 0 <= value.amount <= order.value_of(items).amount + 1
        assert order.credit_return(return_id, items, 0) == value
        credited += value.amount
        assert credited <= order.total.amount
    assert credited == order.total.amount


def test_the_two_units_of_a_rounded_line_are_worth_the_line_together() -> None:
    order = _shipped_order([2], [250, 0, 0], 700)  # 500 + 35 tax; one unit alone: 250 + 17.5
    assert order.total.amount == 535
    first, second = uuid4(), uuid4()
    product = PRODUCTS[0]
    order.open_return(first, {product: 1})
    order.open_return(second, {product: 1})
    assert order.return_value({product: 1}).amount == 268
    assert order.credit_return(first, {product: 1}, 0).amount == 268
    assert order.return_value({product: 1}).amount == 267
    assert order.uncredited(first, {product: 1}) == {}
    assert order.uncredited(second, {product: 1}) == {product: 1}


def test_units_are_credited_once() -> None:
    order = _shipped_order([2], [100, 0, 0], 0)
    return_id = uuid4()
    order.open_return(return_id, {PRODUCTS[0]: 2})
    assert order.credit_return(return_id, {PRODUCTS[0]: 1}, 0).amount == 100
    with pytest.raises(Conflict):
        order.credit_return(return_id, {PRODUCTS[0]: 1}, 0)  # that unit went back already
    assert order.credit_return(return_id, {PRODUCTS[0]: 2}, 100).amount == 100


def test_units_not_under_a_return_cannot_be_credited() -> None:
    order = _shipped_order([2], [100, 0, 0], 0)
    return_id = uuid4()
    order.open_return(return_id, {PRODUCTS[0]: 1})
    with pytest.raises(InvalidValue):
        order.credit_return(return_id, {PRODUCTS[0]: 2}, 0)


def test_a_return_refunded_before_units_were_counted_is_valued_as_then() -> None:
    order = _shipped_order([3], [100, 0, 0], 0)
    return_id = uuid4()
    order.open_return(return_id, {PRODUCTS[0]: 3})
    # 2 units refunded (200) when only money was recorded; a third arrives now.
    assert order.credit_return(return_id, {PRODUCTS[0]: 3}, 200).amount == 100
    assert order.uncredited(return_id, {PRODUCTS[0]: 3}) == {}
    other = uuid4()
    with pytest.raises(Conflict):  # everything it received went back then
        order.credit_return(other, {PRODUCTS[0]: 1}, 100)
