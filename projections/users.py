"""Read models of users and API keys (for admins' lists; sign-in reads the event store)."""

from __future__ import annotations

from typing import Any

from eventsourcing.domain import DomainEventProtocol
from psycopg import AsyncCursor

from domain.api_keys import ApiKey
from domain.identity import User
from projections.base import Change, EventInfo

USERS_DDL = """
CREATE TABLE IF NOT EXISTS users (
    id uuid PRIMARY KEY,
    email text NOT NULL,
    name text NOT NULL,
    role text NOT NULL,
    department text,
    active boolean NOT NULL,
    version integer NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS users_email ON users (email, id);
CREATE INDEX IF NOT EXISTS users_created_at ON users (created_at, id);
"""

API_KEYS_DDL = """
CREATE TABLE IF NOT EXISTS api_keys (
    id uuid PRIMARY KEY,
    name text NOT NULL,
    role text NOT NULL,
    prefix text NOT NULL,
    active boolean NOT NULL,
    version integer NOT NULL,
    created_at timestamptz NOT NULL,
    revoked_at timestamptz
);
CREATE INDEX IF NOT EXISTS api_keys_created_at ON api_keys (created_at, id);
"""

# What each later event changes besides the version (a new password changes no column here).
_UPDATES: dict[type[Any], str] = {
    User.RoleChanged: "role = %(role)s, ",
    User.PasswordChanged: "",
    User.Deactivated: "active = false, ",
}


class UsersProjection:
    """One row per user, without the password hash."""

    name = "users"
    ddl = USERS_DDL
    tables: tuple[str, ...] = ("users",)
    reads: tuple[str, ...] = ()

    def handles(self, event: DomainEventProtocol[Any]) -> bool:
        """User events only."""
        return isinstance(event, (User.Registered, *_UPDATES))

    async def apply(
        self, cursor: AsyncCursor[Any], event: DomainEventProtocol[Any], info: EventInfo
    ) -> list[Change]:
        """Insert on registration, update otherwise (a new password only bumps the version)."""
        row = {"id": event.originator_id, "version": event.originator_version, "at": info.timestamp}
        if isinstance(event, User.Registered):
            await cursor.execute(
                "INSERT INTO users (id, email, name, role, department, active, version,"
                " created_at, updated_at) VALUES (%(id)s, %(email)s, %(name)s, %(role)s,"
                " %(department)s, true, %(version)s, %(at)s, %(at)s)",
                {**vars(event), **row},
            )
            return []
        await cursor.execute(
            f"UPDATE users SET {_UPDATES[type(event)]}version = %(version)s,"
            " updated_at = %(at)s WHERE id = %(id)s",
            {**vars(event), **row},
        )
        return []


class ApiKeysProjection:
    """One row per API key: name, role, public prefix; never the key or its hash."""

    name = "api_keys"
    ddl = API_KEYS_DDL
    tables: tuple[str, ...] = ("api_keys",)
    reads: tuple[str, ...] = ()

    def handles(self, event: DomainEventProtocol[Any]) -> bool:
        """API key events only."""
        return isinstance(event, ApiKey.Issued | ApiKey.Revoked)

    async def apply(
        self, cursor: AsyncCursor[Any], event: DomainEventProtocol[Any], info: EventInfo
    ) -> list[Change]:
        """Insert when issued, mark revoked."""
        if isinstance(event, ApiKey.Issued):
            await cursor.execute(
                "INSERT INTO api_keys (id, name, role, prefix, active, version,"
                " created_at) VALUES (%s, %s, %s, %s, true, %s, %s)",
                (
                    event.originator_id,
                    event.name,
                    event.role,
                    event.prefix,
                    event.originator_version,
                    info.timestamp,
                ),
            )
        else:
            await cursor.execute(
                "UPDATE api_keys SET active = false, revoked_at = %s, version = %s WHERE id = %s",
                (info.timestamp, event.originator_version, event.originator_id),
            )
        return []
