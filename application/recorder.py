"""Event store recorder that orders positions by transaction id, without a table lock.

Why (see notes/event-store-write-path.md): the stock recorder serialises every writer with
LOCK TABLE so that bigserial order equals commit order. Here a position is
``xid * 2**20 + ordinal`` instead, and readers only see positions below the oldest
transaction still in flight (the "horizon"), so "read everything after my last position"
can never miss a transaction that commits late.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar, cast

import msgspec
from eventsourcing.persistence import (
    ApplicationRecorder,
    DataError,
    InterfaceError,
    ListenNotifySubscription,
    Notification,
    OperationalError,
    StoredEvent,
    Subscription,
)
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from eventsourcing.utils import retry
from psycopg.rows import tuple_row
from psycopg.sql import SQL, Identifier, Literal
from psycopg.types.json import Jsonb, set_json_loads

if TYPE_CHECKING:
    from uuid import UUID

    from psycopg import Cursor
    from psycopg.rows import DictRow

ORDINAL_BITS = 20
"""Low bits of a position that number the events of one transaction (1-based)."""

MAX_EVENTS_PER_SAVE = 2**ORDINAL_BITS - 1
"""Larger saves are refused: their ordinals would spill into the next transaction's range."""

HORIZON_SQL = f"(pg_snapshot_xmin(pg_current_snapshot())::text::bigint << {ORDINAL_BITS})"
"""Positions below this are final. Every SQL reader by position must bound its read with it,
in the same statement (so the same snapshot) as the read: ``notification_id < HORIZON_SQL``;
a reader of pages bounds the page instead (`page_below_horizon`)."""


def page_below_horizon(columns: str, table: str, where: str) -> str:
    """A page of events in position order, cut at the horizon; `where` may use parameters,
    and a last one gives the page size.

    The page is taken first and cut after: the planner cannot know the horizon, and with it in
    the same WHERE as the lower bound it estimated a few rows and chose to read and sort
    everything after that bound (seconds per page on a million events). Taking the page in
    index order, then dropping its positions at or above the horizon, gives the same events:
    those below the horizon come first.
    """
    return (
        f"SELECT * FROM (SELECT {columns} FROM {table} WHERE {where}"
        " ORDER BY notification_id LIMIT %s) AS page"
        f" WHERE notification_id < {HORIZON_SQL} ORDER BY notification_id"
    )


_F = TypeVar("_F", bound=Callable[..., Any])


def _retried(func: _F) -> _F:
    """Retry on connection and lock-timeout errors, like the stock recorder does."""
    decorator = retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    return cast(_F, decorator(func))


@dataclass(frozen=True)
class StoredNotification(Notification):
    """A notification with the save's metadata and the id of its writing transaction."""

    # hash=False: a dict is unhashable, and Notification (frozen) is otherwise hashable.
    metadata: dict[str, Any] = field(hash=False)
    transaction_id: int

    @classmethod
    def from_row(
        cls,
        position: int,
        transaction_id: int,
        originator_id: UUID,
        originator_version: int,
        topic: str,
        state: bytes,
        metadata: dict[str, Any],
    ) -> StoredNotification:
        """The same as the constructor, without a frozen dataclass's setattr per field (which
        cost more than reading the row, in pages of thousands)."""
        notification = object.__new__(cls)
        notification.__dict__.update(
            id=position,
            originator_id=originator_id,
            originator_version=originator_version,
            topic=topic,
            state=state,
            metadata=metadata,
            transaction_id=transaction_id,
        )
        return notification


class XidOrderedRecorder(PostgresApplicationRecorder):
    """Application recorder whose positions follow transaction ids (no LOCK TABLE, no NOTIFY)."""

    def __init__(
        self, datastore: PostgresDatastore, *, events_table_name: str = "stored_events"
    ) -> None:
        """Build the SQL for the given table; create it with create_table()."""
        super().__init__(datastore, events_table_name=events_table_name)
        table = SQL("{0}.{1}").format(Identifier(datastore.schema), Identifier(events_table_name))
        id_type = SQL(datastore.originator_id_type)  # validated: "uuid" or "text"
        # Replaces the stock DDL: our own table, no bigserial index, no PL/pgSQL insert
        # function (it takes no lock and does not compute positions), no composite type.
        self.sql_create_statements = [
            SQL(
                "CREATE TABLE IF NOT EXISTS {table} ("
                "notification_id bigint PRIMARY KEY, "
                "transaction_id xid8 NOT NULL DEFAULT pg_current_xact_id(), "
                "originator_id {id_type} NOT NULL, "
                "originator_version int NOT NULL, "
                "topic text, state bytea, "
                "metadata jsonb NOT NULL DEFAULT '{{}}', "
                "event_hash bytea NOT NULL, "
                "UNIQUE (originator_id, originator_version)) "
                # Same autovacuum tuning as the stock table: append-only, rarely vacuumed.
                "WITH (autovacuum_enabled = true, "
                "autovacuum_vacuum_threshold = 100000000, "
                "autovacuum_vacuum_scale_factor = 0.5, "
                "autovacuum_analyze_threshold = 1000, "
                "autovacuum_analyze_scale_factor = 0.01)"
            ).format(table=table, id_type=id_type)
        ]
        # Parallel arrays rather than the stock composite type: cheaper to adapt client-side,
        # bound in binary (psycopg escapes each element of a text-format array in Python).
        # The one-row join sets lock_timeout (transaction-local, like the stock SET LOCAL)
        # before any row can be inserted, so the wait on a conflicting in-flight insert is
        # bounded without a second statement; an INSERT alone is then one round trip.
        # SQL is rendered to bytes once: composing it per call cost more than the insert.
        # Each event's hash chains to the previous event of its stream (see
        # application/audit.py for the byte layout), computed here in the append statement:
        # the previous hash comes from the table or, for several events of one stream in
        # one save, from the recursive step; so the chain costs no extra round trip.
        self.insert_sql = (
            SQL(
                "WITH RECURSIVE input AS ("
                "SELECT e.originator_id, e.originator_version, e.topic, e.state, e.ordinal, "
                "sha256(convert_to(e.originator_id::text, 'UTF8')) "
                "|| int4send(e.originator_version) "
                "|| sha256(convert_to(e.topic, 'UTF8')) || sha256(e.state) "
                "|| sha256(convert_to(%s::jsonb::text, 'UTF8')) AS body "
                "FROM unnest(%b::{id_type}[], %b::int[], %b::text[], %b::bytea[]) "
                "WITH ORDINALITY AS e(originator_id, originator_version, topic, state, ordinal)"
                "), chain AS ("
                "SELECT i.*, sha256(COALESCE(p.event_hash, ''::bytea) || i.body) AS event_hash "
                "FROM input i LEFT JOIN {table} p ON p.originator_id = i.originator_id "
                "AND p.originator_version = i.originator_version - 1 "
                "WHERE NOT EXISTS (SELECT 1 FROM input j WHERE j.originator_id = i.originator_id "
                "AND j.originator_version = i.originator_version - 1) "
                "UNION ALL "
                "SELECT i.*, sha256(c.event_hash || i.body) FROM input i JOIN chain c "
                "ON i.originator_id = c.originator_id "
                "AND i.originator_version = c.originator_version + 1"
                ") "
                "INSERT INTO {table} (notification_id, originator_id, originator_version, "
                "topic, state, metadata, event_hash) "
                "SELECT (pg_current_xact_id()::text::bigint << {bits}) + c.ordinal, "
                "c.originator_id, c.originator_version, c.topic, c.state, %s, c.event_hash "
                "FROM chain c "
                "CROSS JOIN (SELECT set_config('lock_timeout', {lock_timeout}, true)) AS lt "
                "RETURNING notification_id"
            )
            .format(
                table=table,
                id_type=id_type,
                bits=ORDINAL_BITS,
                lock_timeout=Literal(f"{datastore.lock_timeout}s"),
            )
            .as_bytes(None)
        )
        # A save of one event (most commands) binds scalars: adapting four one-element arrays
        # and running the recursive chain cost more than the insert. Same hash as insert_sql.
        self.insert_one_sql = (
            SQL(
                "INSERT INTO {table} (notification_id, originator_id, originator_version, "
                "topic, state, metadata, event_hash) "
                "SELECT (pg_current_xact_id()::text::bigint << {bits}) + 1, "
                "e.originator_id, e.originator_version, e.topic, e.state, e.metadata, "
                "sha256(COALESCE((SELECT p.event_hash FROM {table} p "
                "WHERE p.originator_id = e.originator_id "
                "AND p.originator_version = e.originator_version - 1), ''::bytea) "
                "|| sha256(convert_to(e.originator_id::text, 'UTF8')) "
                "|| int4send(e.originator_version) "
                "|| sha256(convert_to(e.topic, 'UTF8')) || sha256(e.state) "
                "|| sha256(convert_to(e.metadata::text, 'UTF8'))) "
                "FROM (SELECT %s::{id_type} AS originator_id, %s::int AS originator_version, "
                "%s::text AS topic, %s::bytea AS state, %s::jsonb AS metadata, "
                "set_config('lock_timeout', {lock_timeout}, true)) AS e "
                "RETURNING notification_id"
            )
            .format(
                table=table,
                id_type=id_type,
                bits=ORDINAL_BITS,
                lock_timeout=Literal(f"{datastore.lock_timeout}s"),
            )
            .as_bytes(None)
        )
        self.select_columns = (
            "notification_id, transaction_id::text::bigint AS transaction_id, "
            "originator_id, originator_version, topic, state, metadata"
        )
        self.table_name = table.as_string(None)
        self.max_position_sql = (
            SQL(
                "SELECT max(notification_id) AS max FROM {table} "
                "WHERE notification_id < (SELECT {horizon})"
            )
            .format(table=table, horizon=SQL(HORIZON_SQL))
            .as_bytes(None)
        )

    @_retried
    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        """Insert atomically; accepts ``metadata=`` (a JSON-serialisable mapping)."""
        if not stored_events:
            return []
        # Autocommit: the INSERT is its own transaction, so no BEGIN/COMMIT round trips.
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            return self.insert_events_on(curs, stored_events, kwargs.get("metadata"))

    def insert_events_on(
        self,
        curs: Cursor[DictRow],
        stored_events: Sequence[StoredEvent],
        metadata: Mapping[str, Any] | None = None,
    ) -> list[int]:
        """Insert on a cursor whose transaction the caller owns; return the positions.

        Sets lock_timeout for the rest of that transaction, as the stock SET LOCAL does.
        """
        if len(stored_events) > MAX_EVENTS_PER_SAVE:
            msg = f"A save may hold at most {MAX_EVENTS_PER_SAVE} events, got {len(stored_events)}"
            raise DataError(msg)
        stored_metadata = Jsonb(dict(metadata or {}))
        if len(stored_events) == 1:
            only = stored_events[0]
            curs.execute(
                self.insert_one_sql,
                (
                    only.originator_id,
                    only.originator_version,
                    only.topic,
                    only.state,
                    stored_metadata,
                ),
            )
            return [row["notification_id"] for row in curs.fetchall()]
        curs.execute(
            self.insert_sql,
            (
                stored_metadata,
                [e.originator_id for e in stored_events],
                [e.originator_version for e in stored_events],
                [e.topic for e in stored_events],
                [e.state for e in stored_events],
                stored_metadata,
            ),
        )
        # Positions are base + ordinal, so sorting restores the order of stored_events
        # whatever order RETURNING yields.
        return sorted(row["notification_id"] for row in curs.fetchall())

    def page_statement(
        self,
        start: int | None,
        limit: int,
        stop: int | None = None,
        topics: Sequence[str] = (),
        inclusive_of_start: bool = True,
    ) -> tuple[bytes, list[Any]]:
        """The statement and parameters `select_notifications` runs."""
        clauses = ["TRUE"]
        params: list[Any] = []
        if start is not None:
            clauses.append(f"notification_id {'>=' if inclusive_of_start else '>'} %s")
            params.append(start)
        if stop is not None:
            clauses.append("notification_id <= %s")
            params.append(stop)
        if topics:
            clauses.append("topic = ANY(%s)")
            params.append(list(topics))
        params.append(limit)
        where = " AND ".join(clauses)
        return page_below_horizon(self.select_columns, self.table_name, where).encode(), params

    @_retried
    def select_notifications(
        self,
        start: int | None,
        limit: int,
        stop: int | None = None,
        topics: Sequence[str] = (),
        *,
        inclusive_of_start: bool = True,
    ) -> Sequence[StoredNotification]:
        """Notifications in position order, below the horizon (base contract otherwise)."""
        statement, params = self.page_statement(start, limit, stop, topics, inclusive_of_start)
        # Tuple rows and msgspec for the metadata: pages of thousands are read while
        # projections are rebuilt (json.loads of the metadata was most of reading a page).
        with self.datastore.get_connection() as conn, conn.cursor(row_factory=tuple_row) as curs:
            set_json_loads(msgspec.json.decode, curs)
            curs.execute(statement, params, prepare=True)
            row = StoredNotification.from_row
            return [
                row(position, transaction_id, originator_id, version, topic, bytes(state), data)
                for position, transaction_id, originator_id, version, topic, state, data in (
                    curs.fetchall()
                )
            ]

    @_retried
    def max_notification_id(self) -> int | None:
        """The largest position below the horizon, or None."""
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(self.max_position_sql, prepare=True)
            row = curs.fetchone()
            return None if row is None else cast("int | None", row["max"])

    def subscribe(
        self, gt: int | None = None, topics: Sequence[str] = ()
    ) -> Subscription[ApplicationRecorder]:
        """A polling subscription (there is no NOTIFY to listen to)."""
        return PollingSubscription(recorder=self, gt=gt, topics=topics)


class PollingSubscription(ListenNotifySubscription[XidOrderedRecorder]):
    """Pulls with select_notifications, backing off 1 ms to 5 ms while idle."""

    # Class constants, not instance attributes: the base __init__ starts the thread.
    MIN_IDLE_SECONDS = 0.001
    MAX_IDLE_SECONDS = 0.005

    def _loop_on_pull(self) -> None:
        idle = self.MIN_IDLE_SECONDS
        try:
            while not self._has_been_stopped:
                before = self._last_notification_id
                self._pull()
                if self._last_notification_id != before:
                    idle = self.MIN_IDLE_SECONDS
                    continue
                # stop() sets this event, so a stopped subscription does not sleep.
                self._has_been_notified.wait(idle)
                idle = min(idle * 2, self.MAX_IDLE_SECONDS)
        except BaseException as e:
            if self._thread_error is None:
                self._thread_error = e
            self.stop()
