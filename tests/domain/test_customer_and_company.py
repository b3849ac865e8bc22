"""Customer details and deactivation; company settings and their validation."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from uuid import UUID

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import (
    blank_text,
    emails,
    in_memory_application,
    padded,
    replay,
    save_and_reload,
    state_of,
    unsupported_currencies,
    whitespace,
)

from domain.company import COMPANY_SETTINGS_ID, CompanySettings
from domain.customers import Customer
from domain.errors import IllegalTransition, InvalidValue
from domain.values import CURRENCY_EXPONENTS, MAX_QUANTITY


def _customer() -> Customer:
    return Customer.register(
        email="ann@example.com", name="Ann", phone="555 0100", address="1 Main St"
    )


def test_a_registered_customer_is_active_with_trimmed_name_and_phone() -> None:
    customer = Customer.register(email="ann@example.com", name=" Ann ", phone=" 555 ")
    assert (customer.email, customer.name, customer.phone, customer.address) == (
        "ann@example.com",
        "Ann",
        "555",
        "",
    )
    assert customer.active is True
    customer.check_can_order()


@given(blank_text)
def test_a_customer_needs_a_name(name: str) -> None:
    with pytest.raises(InvalidValue) as error:
        Customer.register(email="ann@example.com", name=name)
    assert error.value.field_name == "name"


def test_changing_details_records_the_new_details() -> None:
    customer = _customer()
    customer.change_details(name=" Ann Smith ", phone=" 555 0199 ", address="2 High St")
    assert (customer.name, customer.phone, customer.address) == (
        "Ann Smith",
        "555 0199",
        "2 High St",
    )
    assert [type(e) for e in customer.pending_events] == [
        Customer.Registered,
        Customer.DetailsChanged,
    ]


@given(whitespace, whitespace, whitespace, whitespace)
def test_changing_to_the_same_details_records_nothing(a: str, b: str, c: str, d: str) -> None:
    customer = _customer()
    customer.change_details(name=a + "Ann" + b, phone=c + "555 0100" + d, address="1 Main St")
    customer.change_email("ann@example.com")
    assert customer.version == 1


@given(blank_text)
def test_blank_names_are_refused_when_changing_details(name: str) -> None:
    customer = _customer()
    with pytest.raises(InvalidValue):
        customer.change_details(name=name, phone="", address="")
    assert (customer.name, customer.version) == ("Ann", 1)


@given(emails)
def test_changing_the_email_records_it(email: str) -> None:
    customer = _customer()
    customer.change_email(email)
    assert customer.email == email
    assert customer.version == (1 if email == "ann@example.com" else 2)


@pytest.mark.parametrize(
    "command",
    [
        lambda customer: customer.change_details(name="Bob", phone="", address=""),
        lambda customer: customer.change_details(name="Ann", phone="555 0100", address="1 Main St"),
        lambda customer: customer.change_email("bob@example.com"),
        lambda customer: customer.check_can_order(),
    ],
    ids=["details", "same-details", "email", "order"],
)
def test_a_deactivated_customer_refuses_changes_and_orders(
    command: Callable[[Customer], None],
) -> None:
    customer = _customer()
    customer.deactivate()
    before, pending = state_of(customer), list(customer.pending_events)
    with pytest.raises(IllegalTransition):
        command(customer)
    assert state_of(customer) == before
    assert customer.pending_events == pending


def test_deactivating_twice_records_one_event() -> None:
    customer = _customer()
    customer.deactivate()
    customer.deactivate()
    assert customer.active is False
    assert [type(e) for e in customer.pending_events] == [
        Customer.Registered,
        Customer.Deactivated,
    ]


customer_commands = st.lists(
    st.one_of(
        st.tuples(st.just("details"), padded(), padded()),
        st.tuples(st.just("email"), emails),
        st.tuples(st.just("deactivate")),
    ),
    max_size=6,
)


@settings(max_examples=50, deadline=None)
@given(customer_commands)
def test_replaying_a_customers_events_gives_the_same_state(commands: list[tuple[Any, ...]]) -> None:
    customer = _customer()
    for name, *args in commands:
        if not customer.active and name != "deactivate":
            break
        if name == "details":
            customer.change_details(name=args[0], phone=args[1], address="1 Main St")
        elif name == "email":
            customer.change_email(args[0])
        else:
            customer.deactivate()
    assert state_of(replay(Customer, customer.pending_events)) == state_of(customer)
    assert state_of(save_and_reload(in_memory_application(), customer)) == state_of(customer)


DEFAULTS: dict[str, Any] = {
    "company_name": "PMS",
    "default_currency": "EUR",
    "tax_rate_basis_points": 0,
    "timezone": "UTC",
    "signup_enabled": False,
    "low_stock_threshold": 0,
}


def test_default_settings_are_pms_in_euro_without_tax_in_utc() -> None:
    company = CompanySettings.defaults()
    assert company.id == CompanySettings.create_id() == COMPANY_SETTINGS_ID
    assert {name: getattr(company, name) for name in DEFAULTS} == DEFAULTS
    assert company.default_location_id is None
    assert CompanySettings.defaults().id == company.id


def test_changing_settings_records_the_trimmed_values() -> None:
    company = CompanySettings.defaults()
    company.change(
        company_name=" Acme Ltd ",
        default_currency="GBP",
        tax_rate_basis_points=2_000,
        timezone=" Europe/London ",
        signup_enabled=True,
        low_stock_threshold=5,
    )
    assert (company.company_name, company.default_currency, company.timezone) == (
        "Acme Ltd",
        "GBP",
        "Europe/London",
    )
    assert (company.tax_rate_basis_points, company.signup_enabled, company.low_stock_threshold) == (
        2_000,
        True,
        5,
    )
    assert [type(e) for e in company.pending_events] == [
        CompanySettings.Initialised,
        CompanySettings.Changed,
    ]


def test_changing_to_the_current_settings_records_nothing() -> None:
    company = CompanySettings.defaults()
    company.change(**{**DEFAULTS, "company_name": " PMS\t", "timezone": "UTC "})
    assert company.version == 1


@pytest.mark.parametrize(
    ("change", "field_name"),
    [
        ({"tax_rate_basis_points": -1}, "taxRate"),
        ({"tax_rate_basis_points": 10_001}, "taxRate"),
        ({"default_currency": "eur"}, "defaultCurrency"),
        ({"default_currency": "XXX"}, "defaultCurrency"),
        ({"timezone": "  "}, "timezone"),
        ({"timezone": "T" * 65}, "timezone"),
        ({"company_name": ""}, "companyName"),
        ({"low_stock_threshold": -1}, "lowStockThreshold"),
        ({"low_stock_threshold": MAX_QUANTITY + 1}, "lowStockThreshold"),
    ],
)
def test_invalid_settings_are_refused_and_change_nothing(
    change: dict[str, Any], field_name: str
) -> None:
    company = CompanySettings.defaults()
    before = state_of(company)
    with pytest.raises(InvalidValue) as error:
        company.change(**{**DEFAULTS, "company_name": "Acme", **change})
    assert error.value.field_name == field_name
    assert state_of(company) == before
    assert company.version == 1


@given(unsupported_currencies)
def test_unsupported_default_currencies_are_refused(currency: str) -> None:
    with pytest.raises(InvalidValue):
        CompanySettings.defaults().change(**{**DEFAULTS, "default_currency": currency})


@pytest.mark.parametrize("rate", [0, 10_000])
def test_the_tax_rate_bounds_are_accepted(rate: int) -> None:
    company = CompanySettings.defaults()
    company.change(**{**DEFAULTS, "tax_rate_basis_points": rate, "company_name": "Acme"})
    assert company.tax_rate_basis_points == rate


def test_choosing_the_default_location_again_records_nothing() -> None:
    company = CompanySettings.defaults()
    company.choose_default_location(UUID(int=7))
    company.choose_default_location(UUID(int=7))
    assert company.default_location_id == UUID(int=7)
    assert [type(e) for e in company.pending_events] == [
        CompanySettings.Initialised,
        CompanySettings.DefaultLocationChosen,
    ]


settings_changes = st.fixed_dictionaries(
    {
        "company_name": padded(st.sampled_from(["PMS", "Acme"])),
        "default_currency": st.sampled_from(sorted(CURRENCY_EXPONENTS)),
        "tax_rate_basis_points": st.sampled_from([0, 2_000, 10_000]),
        "timezone": st.sampled_from(["UTC", "Europe/Berlin"]),
        "signup_enabled": st.booleans(),
        "low_stock_threshold": st.integers(0, 3),
    }
)
company_commands = st.lists(
    st.one_of(settings_changes, st.sampled_from([UUID(int=1), UUID(int=2)])), max_size=6
)


@settings(max_examples=50, deadline=None)
@given(company_commands)
def test_replaying_the_settings_events_gives_the_same_state(
    commands: list[dict[str, Any] | UUID],
) -> None:
    company = CompanySettings.defaults()
    for command in commands:
        if isinstance(command, UUID):
            company.choose_default_location(command)
        else:
            company.change(**command)
    assert state_of(replay(CompanySettings, company.pending_events)) == state_of(company)
    assert state_of(save_and_reload(in_memory_application(), company)) == state_of(company)
