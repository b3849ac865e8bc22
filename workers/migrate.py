"""Create or update every table: the event store, transport positions and read models."""

from __future__ import annotations

import psycopg
from psycopg import sql

from application.audit import SEALS_DDL
from application.orders import ORDER_NUMBER_SEQUENCE
from application.recorder import XidOrderedRecorder
from application.store import EventStore
from projections.base import ProjectionGroup
from projections.registry import projection_groups
from workers import projector, relay

SEQUENCES_DDL = f"CREATE SEQUENCE IF NOT EXISTS public.pms_{ORDER_NUMBER_SEQUENCE}"


def group_ddl(group: ProjectionGroup, schema: str) -> str:
    """The group's position table and read models, created in `schema` (one script)."""
    name = sql.Identifier(schema).as_string(None)
    statements = [
        f"CREATE SCHEMA IF NOT EXISTS {name}",
        f"SET search_path TO {name}",
        projector.TRACKING_DDL,
        *(projection.ddl for projection in group.projections),
        "RESET search_path",
    ]
    return ";\n".join(statement.strip().rstrip(";") for statement in statements)


def read_side_ddl() -> list[str]:
    """DDL of the position tables and every projection's tables, in order."""
    statements = [relay.DDL, projector.OUTBOX_DDL, SEQUENCES_DDL, SEALS_DDL]
    statements.extend(group_ddl(group, group.schema) for group in projection_groups())
    return statements


def migrate(store: EventStore, database_url: str) -> None:
    """Idempotently bring the database schema up to date."""
    recorder = store.app.recorder
    if not isinstance(recorder, XidOrderedRecorder):
        raise TypeError(f"unexpected event store recorder {type(recorder).__name__}")
    with psycopg.connect(database_url, autocommit=True) as connection:
        # One migrator at a time when several processes start together.
        connection.execute("SELECT pg_advisory_lock(724001)")
        try:
            recorder.create_table()
            store.create_snapshot_table()
            for statement in read_side_ddl():
                connection.execute(statement)
        finally:
            connection.execute("SELECT pg_advisory_unlock(724001)")
