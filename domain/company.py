"""Company-wide settings that business rules read: currency, tax rate, signup."""

from __future__ import annotations

from uuid import NAMESPACE_URL, UUID, uuid5
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from eventsourcing.domain import Aggregate, event

from domain.errors import InvalidValue
from domain.values import check_currency, non_negative_quantity, required_text

COMPANY_SETTINGS_ID: UUID = uuid5(NAMESPACE_URL, "https://pms.example/company-settings")
MAX_TAX_BASIS_POINTS = 10_000


def _check_timezone(name: str) -> str:
    """An IANA time zone name known to this system."""
    name = required_text(name, "timezone", 64)
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidValue("timezone", f"unknown time zone {name!r}") from None
    return name


class CompanySettings(Aggregate):
    """The one settings aggregate (fixed id)."""

    class Initialised(Aggregate.Created):
        company_name: str
        default_currency: str
        tax_rate_basis_points: int
        timezone: str
        signup_enabled: bool
        low_stock_threshold: int
        default_location_id: UUID | None

    @event(Initialised)
    def __init__(
        self,
        company_name: str,
        default_currency: str,
        tax_rate_basis_points: int,
        timezone: str,
        signup_enabled: bool,
        low_stock_threshold: int,
        default_location_id: UUID | None,
    ) -> None:
        self.company_name = company_name
        self.default_currency = default_currency
        self.tax_rate_basis_points = tax_rate_basis_points
        self.timezone = timezone
        self.signup_enabled = signup_enabled
        self.low_stock_threshold = low_stock_threshold
        self.default_location_id = default_location_id

    @staticmethod
    def create_id() -> UUID:
        """There is exactly one."""
        return COMPANY_SETTINGS_ID

    @classmethod
    def defaults(cls) -> CompanySettings:
        """Settings before an admin changed anything."""
        return cls(
            company_name="PMS",
            default_currency="EUR",
            tax_rate_basis_points=0,
            timezone="UTC",
            signup_enabled=False,
            low_stock_threshold=0,
            default_location_id=None,
        )

    class Changed(Aggregate.Event):
        company_name: str
        default_currency: str
        tax_rate_basis_points: int
        timezone: str
        signup_enabled: bool
        low_stock_threshold: int

        def apply(self, settings: CompanySettings) -> None:
            settings.company_name = self.company_name
            settings.default_currency = self.default_currency
            settings.tax_rate_basis_points = self.tax_rate_basis_points
            settings.timezone = self.timezone
            settings.signup_enabled = self.signup_enabled
            settings.low_stock_threshold = self.low_stock_threshold

    class DefaultLocationChosen(Aggregate.Event):
        location_id: UUID

        def apply(self, settings: CompanySettings) -> None:
            settings.default_location_id = self.location_id

    def choose_default_location(self, location_id: UUID) -> None:
        """Where orders reserve stock when they name no location."""
        if location_id != self.default_location_id:
            self.trigger_event(self.DefaultLocationChosen, location_id=location_id)

    def change(
        self,
        *,
        company_name: str,
        default_currency: str,
        tax_rate_basis_points: int,
        timezone: str,
        signup_enabled: bool,
        low_stock_threshold: int,
    ) -> None:
        """Replace every setting; no event when nothing changes."""
        if not 0 <= tax_rate_basis_points <= MAX_TAX_BASIS_POINTS:
            raise InvalidValue("taxRate", "must be between 0 and 10000 basis points")
        new = (
            required_text(company_name, "companyName"),
            check_currency(default_currency, "defaultCurrency"),
            tax_rate_basis_points,
            _check_timezone(timezone),
            signup_enabled,
            non_negative_quantity(low_stock_threshold, "lowStockThreshold"),
        )
        old = (
            self.company_name,
            self.default_currency,
            self.tax_rate_basis_points,
            self.timezone,
            self.signup_enabled,
            self.low_stock_threshold,
        )
        if new != old:
            self.trigger_event(
                self.Changed,
                company_name=new[0],
                default_currency=new[1],
                tax_rate_basis_points=new[2],
                timezone=new[3],
                signup_enabled=new[4],
                low_stock_threshold=new[5],
            )
