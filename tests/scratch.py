"""Scratch databases and schemas with every table of the projection group, and events applied
to them."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import datetime
from typing import Any

import psycopg
from conftest import fresh_database
from psycopg import AsyncConnection, sql

from application.settings import Settings
from application.store import EventStore
from projections.base import EventInfo
from projections.registry import projection_groups
from projections.schemas import search_path_option
from workers.embedded import ServiceUrls
from workers.migrate import group_ddl, migrate

Stamped = list[tuple[Any, datetime]]


@asynccontextmanager
async def scratch_schema(database_url: str) -> AsyncIterator[AsyncConnection[Any]]:
    """A connection whose search_path is a new schema with the group's tables (dropped after)."""
    [group] = projection_groups()
    schema = f"t_scratch_{secrets.token_hex(4)}"
    async with await AsyncConnection.connect(
        database_url, options=search_path_option(schema)
    ) as opened:
        await opened.execute(group_ddl(group, schema))
        await opened.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
        await opened.commit()
        try:
            yield opened
        finally:
            await opened.rollback()
            await opened.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))
            await opened.commit()


async def project(connection: AsyncConnection[Any], events: Stamped) -> None:
    """Apply the events through the whole group in order, each at its own time."""
    [group] = projection_groups()
    async with connection.cursor() as cursor:
        for position, (event, at) in enumerate(events, start=1):
            info = EventInfo(position, at, {"actor": "user:test"})
            for projection in group.projections:
                if projection.handles(event):
                    await projection.apply(cursor, event, info)


@contextmanager
def scratch_store(servers: ServiceUrls, base: Settings) -> Iterator[tuple[Settings, EventStore]]:
    """A migrated database of its own, dropped afterwards."""
    url = fresh_database(servers.database_url)
    chosen = base.with_changes(database_url=url)
    store = EventStore.connect(chosen)
    try:
        migrate(store, url)
        yield chosen, store
    finally:
        store.close()
        name = psycopg.conninfo.conninfo_to_dict(url)["dbname"]
        with psycopg.connect(servers.database_url, autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(str(name)))
            )
