"""Reading and changing company settings inside a unit of work."""

from __future__ import annotations

import msgspec

from application.context import CommandContext
from application.store import EventStore, Outcome, UnitOfWork
from domain.company import COMPANY_SETTINGS_ID, CompanySettings


class ChangeSettings(msgspec.Struct, rename="camel", forbid_unknown_fields=True, frozen=True):
    """Every company setting (PUT semantics)."""

    company_name: str
    default_currency: str
    tax_rate_basis_points: int
    timezone: str = "UTC"
    signup_enabled: bool = False
    low_stock_threshold: int = 0


def company_settings(unit: UnitOfWork) -> CompanySettings:
    """The company settings, created with defaults on first use (saved with the unit)."""
    found = unit.find(CompanySettings, COMPANY_SETTINGS_ID)
    if found is None:
        found = CompanySettings.defaults()
        unit.add(found)
    return found


def read_settings(store: EventStore) -> CompanySettings:
    """The settings as they are now (defaults when never changed)."""
    return company_settings(UnitOfWork(store.app))


def change_settings(
    store: EventStore, context: CommandContext, command: ChangeSettings
) -> Outcome[CompanySettings]:
    """Replace the company settings."""

    def decide(unit: UnitOfWork) -> CompanySettings:
        settings = company_settings(unit)
        settings.change(
            company_name=command.company_name,
            default_currency=command.default_currency,
            tax_rate_basis_points=command.tax_rate_basis_points,
            timezone=command.timezone,
            signup_enabled=command.signup_enabled,
            low_stock_threshold=command.low_stock_threshold,
        )
        return settings

    return store.execute(context, decide)
