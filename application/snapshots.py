"""Snapshots of long-lived aggregates: their state every so many events, so a load replays only
the events after the latest snapshot instead of the aggregate's whole history.

A stock item gains two events for every order line it serves (reserved, then issued), so its
history grows with the business: replayed whole, a load took 23 ms at 1,000 events and 670 ms
at 30,000. The other aggregates change by hand or end (a product's price, a customer's
details, an order once delivered) and stay short. Snapshots are a cache of the events, kept
beside them in `pms_snapshots`: the hash chain, the audit and the history endpoints read events
only, and a missing snapshot only makes a load replay more.

Changing the state of a snapshotted aggregate class (an attribute added, renamed or retyped)
needs `class_version` raised on the class and an `upcast_v1_v2(state)` static method that
brings older snapshots' state up to date, as for events.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eventsourcing.persistence import StoredEvent
from eventsourcing.postgres import PostgresAggregateRecorder, PostgresDatastore
from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Identifier

from domain.inventory import StockItem

# Events between snapshots, per aggregate class. A load replays fewer than this many events
# after reading the snapshot (about 22 µs each); a snapshot costs one more statement after
# the save that reaches the interval (about 0.3 ms): per command on an item, 10 balances
# 5 × 22 µs of replay against 0.3 ms / 10 of writing.
SNAPSHOT_INTERVALS: dict[type[Any], int] = {StockItem: 10}


def crosses_interval(first_version: int, last_version: int, interval: int) -> bool:
    """Whether a save of versions first..last reaches a multiple of `interval`."""
    return (first_version - 1) // interval != last_version // interval


class SnapshotRecorder(PostgresAggregateRecorder):
    """The latest snapshot of each aggregate, in the stock aggregate recorder's columns.

    Loads read only the latest snapshot (the history and audit views read events), so storing
    one deletes the older ones of the same aggregate in the same statement: the table holds a
    row per snapshotted aggregate, not one per interval of its history. Written from parallel
    arrays bound in binary (no composite type to create and register); a snapshot already
    stored for the same version is kept (both hold the same state).
    """

    def __init__(
        self, datastore: PostgresDatastore, *, events_table_name: str = "stored_snapshots"
    ) -> None:
        """Build the SQL for the given table; create it with create_table()."""
        super().__init__(datastore, events_table_name=events_table_name)
        table = SQL("{0}.{1}").format(Identifier(datastore.schema), Identifier(events_table_name))
        id_type = SQL(datastore.originator_id_type)  # validated: "uuid" or "text"
        # Rows are deleted as often as inserted: default autovacuum, unlike the events table.
        self.sql_create_statements = [
            SQL(
                "CREATE TABLE IF NOT EXISTS {table} ("
                "originator_id {id_type} NOT NULL, originator_version bigint NOT NULL, "
                "topic text, state bytea, PRIMARY KEY (originator_id, originator_version))"
            ).format(table=table, id_type=id_type)
        ]
        self.create_table_statement_index = 0
        self.insert_snapshots_sql = (
            SQL(
                "WITH stored AS ("
                "INSERT INTO {table} (originator_id, originator_version, topic, state) "
                "SELECT * FROM unnest(%b::{id_type}[], %b::bigint[], %b::text[], %b::bytea[]) "
                "ON CONFLICT (originator_id, originator_version) DO NOTHING "
                "RETURNING originator_id, originator_version) "
                "DELETE FROM {table} AS old USING stored "
                "WHERE old.originator_id = stored.originator_id "
                "AND old.originator_version < stored.originator_version"
            )
            .format(table=table, id_type=id_type)
            .as_bytes(None)
        )

    def _insert_stored_events(
        self, curs: Cursor[DictRow], stored_events: Sequence[StoredEvent], **_: Any
    ) -> None:
        curs.execute(
            self.insert_snapshots_sql,
            (
                [stored.originator_id for stored in stored_events],
                [stored.originator_version for stored in stored_events],
                [stored.topic for stored in stored_events],
                [stored.state for stored in stored_events],
            ),
        )
