"""Value objects: money in minor units, quantities, SKUs."""

from __future__ import annotations

import re
from dataclasses import dataclass

from domain.errors import InvalidValue

# ISO 4217 codes we accept; minor-unit exponent per currency.
CURRENCY_EXPONENTS: dict[str, int] = {
    "EUR": 2, "USD": 2, "GBP": 2, "CHF": 2, "SEK": 2, "NOK": 2, "DKK": 2, "PLN": 2,
    "CZK": 2, "CAD": 2, "AUD": 2, "NZD": 2, "JPY": 0, "KRW": 0, "CNY": 2, "INR": 2,
    "BRL": 2, "MXN": 2, "ZAR": 2, "HUF": 2, "RON": 2, "BGN": 2, "TRY": 2, "SGD": 2,
    "HKD": 2, "KWD": 3, "BHD": 3,
}  # fmt: skip

MAX_AMOUNT = 10**15  # far above any real price, far below 2**53 so JSON clients stay exact
MAX_QUANTITY = 10**9
_SKU = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-/]{0,63}$")


def check_currency(currency: str, field_name: str = "currency") -> str:
    """Return the currency code if it is a supported ISO 4217 code."""
    if currency not in CURRENCY_EXPONENTS:
        raise InvalidValue(field_name, f"unsupported currency {currency!r}")
    return currency


@dataclass(frozen=True)
class Money:
    """An amount in integer minor units of one currency."""

    amount: int
    currency: str

    def __post_init__(self) -> None:
        check_currency(self.currency)
        if not -MAX_AMOUNT <= self.amount <= MAX_AMOUNT:
            raise InvalidValue("amount", "amount out of range")

    def __add__(self, other: Money) -> Money:
        self._check_same_currency(other)
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._check_same_currency(other)
        return Money(self.amount - other.amount, self.currency)

    def times(self, quantity: int) -> Money:
        """The amount for `quantity` units."""
        return Money(self.amount * quantity, self.currency)

    def _check_same_currency(self, other: Money) -> None:
        if other.currency != self.currency:
            raise InvalidValue("currency", f"cannot mix {self.currency} and {other.currency}")


def value_of(quantity: int, unit: Money, field_name: str) -> Money:
    """What `quantity` units at `unit` each come to; refused when beyond Money's range (read
    models add such values up, so each one must be an amount the system can hold)."""
    if abs(quantity * unit.amount) > MAX_AMOUNT:
        raise InvalidValue(
            field_name, f"quantity × {field_name} must be at most {MAX_AMOUNT} minor units"
        )
    return unit.times(quantity)


def non_negative_money(money: Money, field_name: str) -> Money:
    """Reject negative prices and costs."""
    if money.amount < 0:
        raise InvalidValue(field_name, "must not be negative")
    return money


def positive_quantity(quantity: int, field_name: str = "quantity") -> int:
    """A quantity that must be at least one unit."""
    if not 0 < quantity <= MAX_QUANTITY:
        raise InvalidValue(field_name, f"must be between 1 and {MAX_QUANTITY}")
    return quantity


def non_negative_quantity(quantity: int, field_name: str = "quantity") -> int:
    """A quantity that may be zero."""
    if not 0 <= quantity <= MAX_QUANTITY:
        raise InvalidValue(field_name, f"must be between 0 and {MAX_QUANTITY}")
    return quantity


def nonzero_delta(quantity: int, field_name: str = "quantity") -> int:
    """A signed quantity change other than zero."""
    if quantity == 0 or abs(quantity) > MAX_QUANTITY:
        raise InvalidValue(field_name, f"must be non-zero and at most {MAX_QUANTITY} in size")
    return quantity


def normalise_sku(sku: str, field_name: str = "sku") -> str:
    """SKUs (and codes spelled like them) compare case-insensitively; stored upper-case."""
    sku = sku.strip()
    if not _SKU.match(sku):
        raise InvalidValue(field_name, "1-64 letters, digits, '.', '_', '-' or '/', starting alnum")
    return sku.upper()


def required_text(value: str, field_name: str, max_length: int = 200) -> str:
    """Trimmed non-empty text of bounded length."""
    value = value.strip()
    if not value:
        raise InvalidValue(field_name, "must not be empty")
    if len(value) > max_length:
        raise InvalidValue(field_name, f"at most {max_length} characters")
    return value
