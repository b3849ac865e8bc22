"""Company settings (admin)."""

from __future__ import annotations

from uuid import UUID

import msgspec
from litestar import Controller, Response, get, put

from api.auth import requires
from api.responses import done
from application.company import ChangeSettings, change_settings, read_settings
from application.context import CommandContext
from application.permissions import Permission
from application.store import EventStore
from domain.company import CompanySettings


class SettingsView(msgspec.Struct, rename="camel", frozen=True):
    """Company settings as clients see them."""

    company_name: str
    default_currency: str
    tax_rate_basis_points: int
    timezone: str
    signup_enabled: bool
    low_stock_threshold: int
    default_location_id: UUID | None
    version: int


def settings_view(settings: CompanySettings) -> SettingsView:
    """The wire shape of the settings."""
    return SettingsView(
        company_name=settings.company_name,
        default_currency=settings.default_currency,
        tax_rate_basis_points=settings.tax_rate_basis_points,
        timezone=settings.timezone,
        signup_enabled=settings.signup_enabled,
        low_stock_threshold=settings.low_stock_threshold,
        default_location_id=settings.default_location_id,
        version=settings.version,
    )


class SettingsController(Controller):
    """Company-wide settings."""

    path = "/settings"
    tags = ["operations"]

    @get(guards=[requires(Permission.SETTINGS_ADMIN)], sync_to_thread=True)
    def read(self, store: EventStore) -> SettingsView:
        """The current settings."""
        return settings_view(read_settings(store))

    @put(guards=[requires(Permission.SETTINGS_ADMIN)], sync_to_thread=True)
    def replace(
        self, data: ChangeSettings, store: EventStore, context: CommandContext
    ) -> Response[SettingsView]:
        """Replace every setting."""
        outcome = change_settings(store, context, data)
        return done(settings_view(outcome.value), outcome.position)
