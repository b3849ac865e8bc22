"""Reading and changing company settings inside a unit of work."""

from __future__ import annotations

from application.store import UnitOfWork
from domain.company import COMPANY_SETTINGS_ID, CompanySettings


def company_settings(unit: UnitOfWork) -> CompanySettings:
    """The company settings, created with defaults on first use (saved with the unit)."""
    found = unit.find(CompanySettings, COMPANY_SETTINGS_ID)
    if found is None:
        found = CompanySettings.defaults()
        unit.add(found)
    return found
