"""Read model of the company settings that reports need: time zone and currency."""

from __future__ import annotations

from typing import Any

from eventsourcing.domain import DomainEventProtocol
from psycopg import AsyncConnection, AsyncCursor

from domain.company import CompanySettings
from projections.base import Change, EventInfo

DDL = """
CREATE TABLE IF NOT EXISTS company_settings (
    id uuid PRIMARY KEY,
    company_name text NOT NULL,
    default_currency text NOT NULL,
    tax_rate_basis_points integer NOT NULL,
    timezone text NOT NULL,
    low_stock_threshold integer NOT NULL,
    default_location_id uuid,
    version integer NOT NULL,
    updated_at timestamptz NOT NULL
);
"""

# What reports use before an admin ever saved settings: CompanySettings.defaults().
DEFAULT_TIMEZONE = "UTC"
DEFAULT_CURRENCY = "EUR"


class CompanySettingsProjection:
    """The one settings row (reports bucket days in its time zone)."""

    name = "company_settings"
    ddl = DDL
    tables: tuple[str, ...] = ("company_settings",)
    reads: tuple[str, ...] = ()

    def handles(self, event: DomainEventProtocol[Any]) -> bool:
        """Settings events."""
        return isinstance(event, CompanySettings.Event)

    async def apply(
        self, cursor: AsyncCursor[Any], event: DomainEventProtocol[Any], info: EventInfo
    ) -> list[Change]:
        """Insert when initialised, then follow every change."""
        row = {
            **vars(event),
            "id": event.originator_id,
            "version": event.originator_version,
            "at": info.timestamp,
        }
        if isinstance(event, CompanySettings.Initialised):
            await cursor.execute(
                "INSERT INTO company_settings (id, company_name, default_currency,"
                " tax_rate_basis_points, timezone, low_stock_threshold, default_location_id,"
                " version, updated_at) VALUES (%(id)s, %(company_name)s, %(default_currency)s,"
                " %(tax_rate_basis_points)s, %(timezone)s, %(low_stock_threshold)s,"
                " %(default_location_id)s, %(version)s, %(at)s)",
                row,
            )
        elif isinstance(event, CompanySettings.Changed):
            await cursor.execute(
                "UPDATE company_settings SET company_name = %(company_name)s,"
                " default_currency = %(default_currency)s,"
                " tax_rate_basis_points = %(tax_rate_basis_points)s, timezone = %(timezone)s,"
                " low_stock_threshold = %(low_stock_threshold)s, version = %(version)s,"
                " updated_at = %(at)s WHERE id = %(id)s",
                row,
            )
        elif isinstance(event, CompanySettings.DefaultLocationChosen):
            await cursor.execute(
                "UPDATE company_settings SET default_location_id = %(location_id)s,"
                " version = %(version)s, updated_at = %(at)s WHERE id = %(id)s",
                row,
            )
        return []


async def reporting_zone(connection: AsyncConnection[Any]) -> tuple[str, str]:
    """The company's time zone and default currency (the defaults before any settings)."""
    cursor = await connection.execute("SELECT timezone, default_currency FROM company_settings")
    row = await cursor.fetchone()
    return (str(row[0]), str(row[1])) if row else (DEFAULT_TIMEZONE, DEFAULT_CURRENCY)
