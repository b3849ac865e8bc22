"""Create or update every table: the event store, transport positions and read models."""

from __future__ import annotations

import psycopg

from application.audit import SEALS_DDL
from application.orders import ORDER_NUMBER_SEQUENCE
from application.recorder import XidOrderedRecorder
from application.store import EventStore
from projections.registry import projection_groups
from workers import projector, relay

SEQUENCES_DDL = f"CREATE SEQUENCE IF NOT EXISTS public.pms_{ORDER_NUMBER_SEQUENCE}"


def read_side_ddl() -> list[str]:
    """DDL of the position tables and every projection's tables, in order."""
    statements = [relay.DDL, projector.DDL, SEQUENCES_DDL, SEALS_DDL]
    for group in projection_groups():
        statements.extend(projection.ddl for projection in group.projections)
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
            for statement in read_side_ddl():
                connection.execute(statement)
        finally:
            connection.execute("SELECT pg_advisory_unlock(724001)")
