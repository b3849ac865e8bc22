"""Value objects: money, quantities, SKUs and required text."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import (
    blank_text,
    currencies,
    money,
    out_of_range_quantities,
    padded,
    plain_text,
    positive_quantities,
    quantities,
    skus,
    unsupported_currencies,
    whitespace,
)

from domain.errors import InvalidValue
from domain.values import (
    CURRENCY_EXPONENTS,
    MAX_AMOUNT,
    MAX_QUANTITY,
    Money,
    check_currency,
    non_negative_money,
    non_negative_quantity,
    nonzero_delta,
    normalise_sku,
    positive_quantity,
    required_text,
    value_of,
)

amounts = st.integers(min_value=-(10**12), max_value=10**12)


@given(currencies, amounts, amounts)
def test_adding_money_adds_amounts_in_the_same_currency(currency: str, a: int, b: int) -> None:
    assert Money(a, currency) + Money(b, currency) == Money(a + b, currency)


@given(currencies, amounts, amounts)
def test_subtracting_money_undoes_adding_it(currency: str, a: int, b: int) -> None:
    x, y = Money(a, currency), Money(b, currency)
    assert x + y - y == x
    assert (x - y).amount == a - b


@given(currencies, st.integers(-(10**6), 10**6), st.integers(-(10**6), 10**6))
def test_times_is_repeated_addition(currency: str, amount: int, quantity: int) -> None:
    assert Money(amount, currency).times(quantity) == Money(amount * quantity, currency)


@given(money(amounts=amounts), money(amounts=amounts))
def test_money_in_different_currencies_cannot_be_mixed(x: Money, y: Money) -> None:
    if x.currency == y.currency:
        assert (x + y).currency == x.currency
        return
    with pytest.raises(InvalidValue) as add_error:
        x + y
    with pytest.raises(InvalidValue) as subtract_error:
        x - y
    assert add_error.value.field_name == subtract_error.value.field_name == "currency"


def test_money_amount_is_bounded_both_ways() -> None:
    assert Money(MAX_AMOUNT, "EUR").amount == MAX_AMOUNT
    assert Money(-MAX_AMOUNT, "EUR").amount == -MAX_AMOUNT
    for amount in (MAX_AMOUNT + 1, -MAX_AMOUNT - 1):
        with pytest.raises(InvalidValue) as error:
            Money(amount, "EUR")
        assert error.value.field_name == "amount"


def test_arithmetic_that_leaves_the_range_is_refused() -> None:
    with pytest.raises(InvalidValue):
        Money(MAX_AMOUNT, "USD") + Money(1, "USD")
    with pytest.raises(InvalidValue):
        Money(-MAX_AMOUNT, "USD") - Money(1, "USD")
    with pytest.raises(InvalidValue):
        Money(MAX_AMOUNT // 2 + 1, "USD").times(2)


@given(
    st.one_of(st.integers(1, MAX_QUANTITY), st.sampled_from([1, 10**4, MAX_QUANTITY])),
    st.one_of(st.integers(0, MAX_AMOUNT), st.sampled_from([0, 10**6, MAX_AMOUNT])),
)
def test_a_value_is_quantity_times_unit_within_the_range_of_money(quantity: int, unit: int) -> None:
    if quantity * unit <= MAX_AMOUNT:
        assert value_of(quantity, Money(unit, "EUR"), "unitCost") == Money(quantity * unit, "EUR")
        return
    with pytest.raises(InvalidValue) as error:
        value_of(quantity, Money(unit, "EUR"), "unitCost")
    assert error.value.field_name == "unitCost"


def test_the_largest_value_is_the_largest_amount() -> None:
    assert value_of(10**4, Money(10**11, "EUR"), "unitCost").amount == MAX_AMOUNT
    with pytest.raises(InvalidValue):
        value_of(10**4, Money(10**11 + 1, "EUR"), "unitCost")
    with pytest.raises(InvalidValue):  # the reviewer's receipt: worth 10**19, past bigint
        value_of(10**4, Money(MAX_AMOUNT, "EUR"), "unitCost")


@given(unsupported_currencies)
def test_money_refuses_unsupported_currencies(code: str) -> None:
    with pytest.raises(InvalidValue) as error:
        Money(0, code)
    assert error.value.field_name == "currency"
    with pytest.raises(InvalidValue) as error:
        check_currency(code, "priceCurrency")
    assert error.value.field_name == "priceCurrency"


def test_currency_codes_are_case_sensitive_iso_codes() -> None:
    assert check_currency("EUR") == "EUR"
    for code in ("eur", "Eur", " EUR", "EURO", ""):
        with pytest.raises(InvalidValue):
            check_currency(code)
    assert all(exponent in (0, 2, 3) for exponent in CURRENCY_EXPONENTS.values())


@given(money())
def test_non_negative_money_passes_zero_and_positive_amounts(value: Money) -> None:
    assert non_negative_money(value, "price") is value


@given(money(amounts=st.integers(-MAX_AMOUNT, -1)))
def test_negative_money_is_refused_naming_the_field(value: Money) -> None:
    with pytest.raises(InvalidValue) as error:
        non_negative_money(value, "cost")
    assert error.value.field_name == "cost"


@given(positive_quantities)
def test_positive_quantity_accepts_one_to_the_maximum(quantity: int) -> None:
    assert positive_quantity(quantity) == quantity


@given(st.one_of(st.just(0), out_of_range_quantities))
def test_positive_quantity_refuses_zero_negative_and_huge(quantity: int) -> None:
    with pytest.raises(InvalidValue) as error:
        positive_quantity(quantity, "lineQuantity")
    assert error.value.field_name == "lineQuantity"


@given(quantities)
def test_non_negative_quantity_accepts_zero_to_the_maximum(quantity: int) -> None:
    assert non_negative_quantity(quantity) == quantity


@given(out_of_range_quantities)
def test_non_negative_quantity_refuses_negative_and_huge(quantity: int) -> None:
    with pytest.raises(InvalidValue) as error:
        non_negative_quantity(quantity)
    assert error.value.field_name == "quantity"


@given(positive_quantities, st.booleans())
def test_nonzero_delta_accepts_either_sign_up_to_the_maximum(size: int, negative: bool) -> None:
    delta = -size if negative else size
    assert nonzero_delta(delta) == delta


@given(st.one_of(st.just(0), st.integers(min_value=MAX_QUANTITY + 1)), st.booleans())
def test_nonzero_delta_refuses_zero_and_huge(size: int, negative: bool) -> None:
    with pytest.raises(InvalidValue):
        nonzero_delta(-size if negative else size)


def test_quantity_bounds_are_inclusive() -> None:
    assert positive_quantity(1) == 1
    assert positive_quantity(MAX_QUANTITY) == MAX_QUANTITY
    assert non_negative_quantity(0) == 0
    assert nonzero_delta(-MAX_QUANTITY) == -MAX_QUANTITY


@given(skus, whitespace, whitespace)
def test_sku_normalisation_is_trimmed_upper_case(sku: str, before: str, after: str) -> None:
    assert normalise_sku(before + sku + after) == sku.upper()


@given(skus)
def test_skus_compare_case_insensitively(sku: str) -> None:
    assert normalise_sku(sku.lower()) == normalise_sku(sku.upper()) == normalise_sku(sku)


@given(skus)
def test_normalising_a_sku_twice_changes_nothing(sku: str) -> None:
    once = normalise_sku(sku)
    assert normalise_sku(once) == once


@pytest.mark.parametrize(
    "sku",
    [
        "",
        "   ",
        "-ABC",
        ".ABC",
        "/ABC",
        "AB C",
        "AB:C",
        "AB\nC",
        "ÄBC",
        "ABC!",
        "A" * 65,
    ],
)
def test_malformed_skus_are_refused(sku: str) -> None:
    with pytest.raises(InvalidValue) as error:
        normalise_sku(sku)
    assert error.value.field_name == "sku"


def test_sku_length_limit_is_64_characters() -> None:
    assert normalise_sku("a" * 64) == "A" * 64


@given(padded(plain_text))
def test_required_text_is_trimmed(text: str) -> None:
    assert required_text(text, "name") == text.strip()


@given(blank_text)
def test_blank_required_text_is_refused_naming_the_field(text: str) -> None:
    with pytest.raises(InvalidValue) as error:
        required_text(text, "reason")
    assert error.value.field_name == "reason"


@given(st.integers(min_value=1, max_value=50), whitespace)
def test_required_text_length_counts_after_trimming(limit: int, padding: str) -> None:
    assert required_text(padding + "x" * limit + padding, "name", limit) == "x" * limit
    with pytest.raises(InvalidValue):
        required_text("x" * (limit + 1), "name", limit)


def test_required_text_defaults_to_200_characters() -> None:
    assert required_text("x" * 200, "name") == "x" * 200
    with pytest.raises(InvalidValue):
        required_text("x" * 201, "name")
