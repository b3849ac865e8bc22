"""Load several aggregates in one query: each from its latest snapshot, if it has one, and the
events after it.

A command that touches many aggregates (placing an order reads the customer, the company
settings, each line's product and stock item and the location) otherwise pays a round trip
and psycopg's per-statement work for each, and one more for each stock item's snapshot.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from itertools import groupby
from typing import Any, cast
from uuid import UUID

from eventsourcing.domain import Aggregate, CanMutateProtocol, DomainEventProtocol
from eventsourcing.persistence import Mapper, StoredEvent
from eventsourcing.postgres import PostgresDatastore
from psycopg.rows import tuple_row
from psycopg.sql import SQL, Identifier


def replay(
    aggregate: Aggregate | None, events: Iterable[DomainEventProtocol[Any]]
) -> Aggregate | None:
    """Fold `events` (a snapshot first, or a creation event) into an aggregate.

    The library's `project_aggregate` asserts a runtime-checkable protocol on every event,
    which costs more than applying most events on Python 3.11.
    """
    for event in events:
        aggregate = cast(CanMutateProtocol[Aggregate], event).mutate(aggregate)
    return aggregate


class BatchLoader:
    """Reads the rows of several aggregates at once and folds them."""

    def __init__(
        self,
        datastore: PostgresDatastore,
        mapper: Mapper[UUID],
        events_table: str,
        snapshots_table: str,
    ) -> None:
        self.datastore = datastore
        self.mapper = mapper
        schema = datastore.schema
        # One statement, so one snapshot of the database: the aggregates are read as of the
        # same moment. A snapshot sorts before the events after it (same id, lower version).
        # The events are read per id (LATERAL), so the version bound is an index condition:
        # joined as a set, PostgreSQL read every event of the aggregate and filtered them.
        # OFFSET 0 keeps the planner from flattening the LATERAL back into such a join, which
        # the generic plan of the prepared statement did (a sequential scan of the table).
        self.sql = (
            SQL(
                "WITH latest AS (SELECT DISTINCT ON (originator_id) originator_id, "
                "originator_version, topic, state FROM {snapshots} "
                "WHERE originator_id = ANY(%(ids)s) "
                "ORDER BY originator_id, originator_version DESC) "
                "SELECT originator_id, originator_version, topic, state FROM latest "
                "UNION ALL "
                "SELECT e.originator_id, e.originator_version, e.topic, e.state "
                "FROM (SELECT DISTINCT unnest(%(ids)s::uuid[]) AS id) i "
                "LEFT JOIN latest l ON l.originator_id = i.id "
                "CROSS JOIN LATERAL (SELECT originator_id, originator_version, topic, state "
                "FROM {events} WHERE originator_id = i.id "
                "AND originator_version > COALESCE(l.originator_version, 0) OFFSET 0) e "
                "ORDER BY 1, 2"
            )
            .format(
                snapshots=Identifier(schema, snapshots_table),
                events=Identifier(schema, events_table),
            )
            .as_bytes(None)
        )

    def load(self, ids: Sequence[UUID]) -> dict[UUID, Aggregate]:
        """The aggregates among `ids` that exist (the others are left out)."""
        if not ids:
            return {}
        with (
            self.datastore.get_connection() as conn,
            conn.cursor(row_factory=tuple_row) as curs,
        ):
            curs.execute(self.sql, {"ids": list(ids)}, prepare=True)
            rows = curs.fetchall()
        found: dict[UUID, Aggregate] = {}
        for originator_id, stream in groupby(rows, key=lambda row: row[0]):
            events = (
                self.mapper.to_domain_event(StoredEvent(oid, version, topic, bytes(state)))
                for oid, version, topic, state in stream
            )
            aggregate = replay(None, events)
            if aggregate is not None:
                found[originator_id] = aggregate
        return found
