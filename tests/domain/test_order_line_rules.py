"""Rules on an order's lines that the aggregate itself enforces."""

from __future__ import annotations

from uuid import UUID

import pytest

from domain.company import CompanySettings
from domain.errors import InvalidValue
from domain.orders import Order, OrderLine
from domain.values import MAX_AMOUNT, Money


def _line(product: int, quantity: int, amount: int = 100) -> OrderLine:
    return OrderLine(
        product_id=UUID(int=product),
        sku=f"P{product}",
        name="P",
        quantity=quantity,
        unit_price=Money(amount, "EUR"),
    )


def _place(lines: list[OrderLine]) -> Order:
    return Order.place(
        order_id=UUID(int=99),
        order_number="ORD-000001",
        customer_id=UUID(int=1),
        location_id=UUID(int=2),
        currency="EUR",
        lines=lines,
        shipping_address="1 Main St",
        tax_rate_basis_points=2000,
    )


@pytest.mark.parametrize(
    "lines",
    [
        [_line(1, 2), _line(1, 3)],
        [_line(1, 0)],
        [_line(1, -1)],
        [_line(1, 2, MAX_AMOUNT)],
        [],
    ],
    ids=["same product twice", "zero", "negative", "total beyond range", "no lines"],
)
def test_an_order_refuses_lines_it_could_not_account_for(lines: list[OrderLine]) -> None:
    with pytest.raises(InvalidValue):
        _place(lines)
    order = _place([_line(5, 1)])
    with pytest.raises(InvalidValue):
        order.change_lines(lines)
    assert order.lines == [_line(5, 1)]
    assert len(order.pending_events) == 1


def test_company_settings_accept_only_known_time_zones() -> None:
    settings = CompanySettings.defaults()
    base = {
        "company_name": "Acme",
        "default_currency": "EUR",
        "tax_rate_basis_points": 0,
        "signup_enabled": False,
        "low_stock_threshold": 0,
    }
    with pytest.raises(InvalidValue):
        settings.change(timezone="Mars/Olympus", **base)  # type: ignore[arg-type]
    settings.change(timezone="Europe/Vienna", **base)  # type: ignore[arg-type]
    assert settings.timezone == "Europe/Vienna"
