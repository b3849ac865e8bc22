"""What each role may do."""

from __future__ import annotations

from enum import StrEnum

from domain.identity import Role


class Permission(StrEnum):
    """One permission per kind of route (users:admin also covers API keys)."""

    CATALOGUE_READ = "catalogue:read"
    CATALOGUE_WRITE = "catalogue:write"
    PRICES_WRITE = "prices:write"
    INVENTORY_READ = "inventory:read"
    INVENTORY_WRITE = "inventory:write"
    LOCATIONS_WRITE = "locations:write"
    ORDERS_READ = "orders:read"
    ORDERS_WRITE = "orders:write"
    PAYMENTS_WRITE = "payments:write"
    REPORTS_READ = "reports:read"
    REPORTS_EXPORT = "reports:export"
    USERS_ADMIN = "users:admin"
    SETTINGS_ADMIN = "settings:admin"
    AUDIT_READ = "audit:read"
    PROJECTIONS_ADMIN = "projections:admin"  # status and rebuilds of read models (admin only)


_READ = frozenset(
    {
        Permission.CATALOGUE_READ,
        Permission.INVENTORY_READ,
        Permission.ORDERS_READ,
        Permission.REPORTS_READ,
    }
)

ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    "viewer": _READ,
    "employee": _READ
    | {Permission.CATALOGUE_WRITE, Permission.INVENTORY_WRITE, Permission.ORDERS_WRITE},
    "manager": _READ
    | {
        Permission.CATALOGUE_WRITE,
        Permission.PRICES_WRITE,
        Permission.INVENTORY_WRITE,
        Permission.LOCATIONS_WRITE,
        Permission.ORDERS_WRITE,
        Permission.PAYMENTS_WRITE,
        Permission.REPORTS_EXPORT,
    },
    "admin": frozenset(Permission),
}


def allows(role: str, permission: Permission) -> bool:
    """Whether `role` has `permission` (unknown roles have none)."""
    return permission in ROLE_PERMISSIONS.get(role, frozenset())  # type: ignore[call-overload]
