"""Our seam around the event store: load aggregates, decide, save atomically, retry conflicts."""

from __future__ import annotations

import contextlib
import logging
import random
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, fields
from typing import Any, Generic, TypeVar, cast
from uuid import UUID

from eventsourcing.application import (
    AggregateNotFoundError,
    Application,
    ProcessingEvent,
    Repository,
)
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import EventStore as Events
from eventsourcing.persistence import (
    IntegrityError,
    JSONTranscoder,
    PersistenceError,
    Transcoder,
    Transcoding,
)
from eventsourcing.postgres import PostgresApplicationRecorder
from psycopg.conninfo import conninfo_to_dict
from psycopg.sql import SQL, Literal

from application.contention import SaveLocks
from application.context import CommandContext
from application.loading import BatchLoader, replay
from application.recorder import StoredNotification
from application.settings import Settings, SettingsError
from application.snapshots import SNAPSHOT_INTERVALS, SnapshotRecorder, crosses_interval
from application.transcoder import MsgspecJSONTranscoder
from domain.errors import Conflict, NotFound
from domain.orders import OrderLine, ShipmentItem
from domain.payments import Refund
from domain.returns import ReceivedItem, ReturnItem
from domain.values import Money

log = logging.getLogger(__name__)

A = TypeVar("A", bound=Aggregate)
T = TypeVar("T")

RECORDER_TOPIC = "application.recorder:XidOrderedRecorder"


class ConcurrencyConflict(Conflict):
    """The command lost every retry to concurrent writers."""

    code = "concurrency-conflict"


class VersionMismatch(Conflict):
    """The client's If-Match version is not the aggregate's current version."""

    code = "version-mismatch"


class MoneyAsDict(Transcoding):
    """Stores Money as {"amount", "currency"}."""

    type = Money
    name = "money"

    def encode(self, obj: Money) -> dict[str, Any]:
        return {"amount": obj.amount, "currency": obj.currency}

    def decode(self, data: dict[str, Any]) -> Money:
        return Money(int(data["amount"]), str(data["currency"]))


class DataclassAsDict(Transcoding):
    """Stores a frozen dataclass value object as a dict of its fields."""

    def __init__(self, cls: type[Any], name: str) -> None:
        self.type = cls
        self.name = name
        self._fields = [f.name for f in fields(cls)]

    def encode(self, obj: Any) -> dict[str, Any]:
        return {name: getattr(obj, name) for name in self._fields}

    def decode(self, data: dict[str, Any]) -> Any:
        return self.type(**data)


class PmsApplication(Application[UUID]):
    """The one event-sourced application: one notification log for all aggregates."""

    name = "pms"
    snapshotting_intervals = SNAPSHOT_INTERVALS

    def __init__(self, env: dict[str, str] | None = None) -> None:
        super().__init__(env)
        # Reads a snapshot before the events (`load_many` without the batch loader).
        self.snapshotted = self._repository_over(self.snapshots)
        self.batch_loader: BatchLoader | None = None
        snapshots = self.snapshots.recorder if self.snapshots else None
        if isinstance(self.recorder, PostgresApplicationRecorder) and isinstance(
            snapshots, SnapshotRecorder
        ):
            self.batch_loader = BatchLoader(
                self.recorder.datastore,
                self.mapper,
                self.recorder.events_table_name,
                snapshots.events_table_name,
            )

    def construct_snapshot_store(self) -> Events[UUID]:
        """Snapshots in `pms_snapshots`, beside the events (in memory for domain tests)."""
        if isinstance(self.recorder, PostgresApplicationRecorder):
            recorder = SnapshotRecorder(self.recorder.datastore, events_table_name="pms_snapshots")
            return Events(mapper=self.mapper, recorder=recorder)
        return super().construct_snapshot_store()

    def construct_repository(self) -> Repository[UUID]:
        """Loads from events alone: the history and audit views, and every aggregate whose
        class takes no snapshots (one query, not a snapshot query first)."""
        return self._repository_over(None)

    def _repository_over(self, snapshots: Events[UUID] | None) -> Repository[UUID]:
        size = self.env.get(self.AGGREGATE_CACHE_MAXSIZE)
        return Repository(
            self.events, snapshot_store=snapshots, cache_maxsize=int(size) if size else None
        )

    def load_many(self, ids: Sequence[UUID]) -> dict[UUID, Aggregate]:
        """The aggregates among `ids` that exist, each at its current state (from its latest
        snapshot and the events after it), in one query; one by one through the aggregate
        cache when PMS_AGGREGATE_CACHE enables it, and in the domain tests' in-memory store."""
        if self.batch_loader is not None and self.repository.cache is None:
            return self.batch_loader.load(ids)
        found = {}
        for aggregate_id in ids:
            with contextlib.suppress(AggregateNotFoundError):
                found[aggregate_id] = self.snapshotted.get(aggregate_id, projector_func=replay)
        return found

    def _take_snapshots(self, processing_event: ProcessingEvent[UUID]) -> None:
        """After a save, a snapshot of each saved aggregate whose new events reached a
        multiple of its class's interval: of the state in hand, which is what the save
        committed (the library would load it again). The events are committed by then, so
        a snapshot that cannot be stored is logged, never raised: it is only a cache."""
        first: dict[UUID, int] = {}
        for event in processing_event.events:
            first.setdefault(event.originator_id, event.originator_version)
        for aggregate_id, version in first.items():
            aggregate = processing_event.aggregates.get(aggregate_id)
            interval = self.snapshotting_intervals.get(type(aggregate))
            if not isinstance(aggregate, Aggregate) or interval is None or self.snapshots is None:
                continue
            if crosses_interval(version, aggregate.version, interval):
                try:
                    self.snapshots.put([type(aggregate).Snapshot.take(aggregate)])
                except PersistenceError:
                    log.warning("snapshot of %s not stored", aggregate_id, exc_info=True)

    def construct_transcoder(self) -> Transcoder:
        """The library's JSON transcoder with a faster decoder, and our value objects."""
        transcoder = MsgspecJSONTranscoder()
        self.register_transcodings(transcoder)
        return transcoder

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        """Add our value objects to the library's JSON transcoder."""
        super().register_transcodings(transcoder)
        transcoder.register(MoneyAsDict())
        transcoder.register(DataclassAsDict(OrderLine, "order_line"))
        transcoder.register(DataclassAsDict(ShipmentItem, "shipment_item"))
        transcoder.register(DataclassAsDict(Refund, "refund"))
        transcoder.register(DataclassAsDict(ReturnItem, "return_item"))
        transcoder.register(DataclassAsDict(ReceivedItem, "received_item"))


def application_env(settings: Settings) -> dict[str, str]:
    """eventsourcing's environment for our PostgreSQL event store.

    PMS_EVENT_STORE=stock selects eventsourcing's own recorder (LOCK TABLE, NOTIFY, bigserial)
    as a benchmark baseline only: its table has another shape, so it needs its own database,
    and the relay and projectors need the xid recorder's metadata column.
    """
    recorder_topics = {
        "xid": RECORDER_TOPIC,
        "stock": "eventsourcing.postgres:PostgresApplicationRecorder",
    }
    if settings.event_store not in recorder_topics:
        raise SettingsError(f"PMS_EVENT_STORE must be xid or stock, got {settings.event_store!r}")
    params = conninfo_to_dict(settings.database_url)
    # Aggregates stay cached between commands; each load still reads the events stored
    # since (fast-forward, under a per-aggregate lock) and hands the command a deep copy,
    # so only the replay of older events is saved. A database restored to an earlier state
    # needs the processes restarted.
    cache = (
        {"AGGREGATE_CACHE_MAXSIZE": str(settings.aggregate_cache_size)}
        if settings.aggregate_cache_size > 0
        else {}
    )
    return {
        **cache,
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "APPLICATION_RECORDER_TOPIC": recorder_topics[settings.event_store],
        "POSTGRES_DBNAME": str(params.get("dbname", "postgres")),
        "POSTGRES_HOST": str(params.get("host", "127.0.0.1")),
        "POSTGRES_PORT": str(params.get("port", "5432")),
        "POSTGRES_USER": str(params.get("user", "postgres")),
        "POSTGRES_PASSWORD": str(params.get("password", "")),
        "POSTGRES_POOL_SIZE": str(settings.db_pool_size),
        "POSTGRES_MAX_OVERFLOW": "0",
        "POSTGRES_CONNECT_TIMEOUT": "10",
        "POSTGRES_LOCK_TIMEOUT": "5",
        "POSTGRES_IDLE_IN_TRANSACTION_SESSION_TIMEOUT": "5",
        "CREATE_TABLE": "n",
    }


@dataclass(frozen=True)
class Outcome(Generic[T]):
    """What a command decided, and the store position of its last event."""

    value: T
    position: int


class UnitOfWork:
    """The aggregates one command attempt loaded or created; saved together or not at all."""

    def __init__(self, app: PmsApplication) -> None:
        self._app = app
        self._aggregates: dict[UUID, Aggregate] = {}
        self._missing: set[UUID] = set()  # prefetched ids that name no aggregate

    def prefetch(self, ids: Iterable[UUID]) -> None:
        """Load the aggregates with these ids in one query (those not loaded yet), so that
        the `get`s and `find`s that follow need none."""
        wanted = [i for i in dict.fromkeys(ids) if i not in self._aggregates]
        found = self._app.load_many(wanted)
        self._aggregates.update(found)
        self._missing.update(i for i in wanted if i not in found)

    def get(self, cls: type[A], aggregate_id: UUID, *, version: int | None = None) -> A:
        """Load an aggregate of type `cls`, or raise NotFound; check If-Match `version`."""
        found = self.find(cls, aggregate_id)
        if found is None:
            raise NotFound(f"{cls.__name__.lower()} {aggregate_id} not found", id=aggregate_id)
        if version is not None and found.version != version:
            raise VersionMismatch(
                f"{cls.__name__.lower()} is at version {found.version}, not {version}",
                current_version=found.version,
            )
        return found

    def find(self, cls: type[A], aggregate_id: UUID) -> A | None:
        """Load an aggregate of type `cls` if it exists."""
        if aggregate_id not in self._aggregates and aggregate_id not in self._missing:
            self.prefetch([aggregate_id])
        found = self._aggregates.get(aggregate_id)
        return found if isinstance(found, cls) else None

    def add(self, *aggregates: Aggregate) -> None:
        """Include new aggregates in this unit's save."""
        for aggregate in aggregates:
            self._aggregates[aggregate.id] = aggregate

    def changed(self) -> list[Aggregate]:
        """Aggregates with events waiting to be saved."""
        return [a for a in self._aggregates.values() if a.pending_events]


class EventStore:
    """Runs commands against the event store with optimistic concurrency."""

    def __init__(self, app: PmsApplication, *, retries: int = 10) -> None:
        self.app = app
        self.retries = retries
        self._save_locks = SaveLocks()

    @classmethod
    def connect(cls, settings: Settings) -> EventStore:
        """An event store on the PostgreSQL server of `settings`."""
        app = PmsApplication(env=application_env(settings))
        return cls(app, retries=settings.command_retries)

    def create_snapshot_table(self) -> None:
        """Create `pms_snapshots` if it does not exist (`pms migrate`)."""
        snapshots = self.app.snapshots
        assert snapshots is not None
        assert isinstance(snapshots.recorder, SnapshotRecorder)
        snapshots.recorder.create_table()

    def close(self) -> None:
        """Release the connection pool."""
        self.app.close()

    def execute(self, context: CommandContext, decide: Callable[[UnitOfWork], T]) -> Outcome[T]:
        """Run `decide` on fresh aggregates and save what it changed in one transaction.

        Commands of this process that change the same aggregates save one at a time (see
        `SaveLocks`). A concurrent write from another process makes the save fail its version
        check; then the whole decision is taken again on the new state, a bounded number of
        times, so a business rule is never checked against stale state.
        """
        conflicts = 0
        seen: list[int] | None = self._save_locks.releases()  # None once the locks are held
        with contextlib.ExitStack() as held:
            while True:
                unit = UnitOfWork(self.app)
                value = decide(unit)
                changed = unit.changed()
                if not changed:
                    return Outcome(value, self.max_position())
                if seen is not None:
                    ids = [aggregate.id for aggregate in changed]
                    untouched = held.enter_context(self._save_locks.holding(ids, seen))
                    seen = None
                    if not untouched:
                        continue  # saved by another command meanwhile: decide again
                try:
                    recordings = self.app.save(*changed, metadata=context.metadata())
                except IntegrityError:
                    conflicts += 1
                    log.info("version conflict, attempt %d of %s", conflicts, self.retries + 1)
                    if conflicts > self.retries:
                        break
                    time.sleep(random.uniform(0, 0.002 * conflicts))
                    continue
                return Outcome(value, recordings[-1].notification.id)
        raise ConcurrencyConflict("too many concurrent changes to the same records; try again")

    def next_number(self, sequence: str) -> int:
        """The next value of a PostgreSQL sequence (human document numbers; gaps allowed)."""
        recorder = self.app.recorder
        if not isinstance(recorder, PostgresApplicationRecorder):
            raise TypeError("document numbers need the PostgreSQL event store")
        with recorder.datastore.get_connection() as connection, connection.cursor() as cursor:
            cursor.execute(SQL("SELECT nextval({})").format(Literal(f"pms_{sequence}")))
            row = cursor.fetchone()
        assert row is not None
        return int(row["nextval"])

    def max_position(self) -> int:
        """The position of the newest event readers may see."""
        return int(self.app.recorder.max_notification_id() or 0)

    def notifications(
        self, after: int, limit: int, *, stop: int | None = None
    ) -> Sequence[StoredNotification]:
        """Stored events after position `after`, oldest first, with their metadata."""
        page = self.app.recorder.select_notifications(
            start=after, limit=limit, stop=stop, inclusive_of_start=False
        )
        return cast(Sequence[StoredNotification], page)

    def iter_notifications(self, after: int, *, batch: int = 1000) -> Iterator[StoredNotification]:
        """Every stored event after `after` that readers may see now."""
        while True:
            page = self.notifications(after, batch)
            yield from page
            if len(page) < batch:
                return
            after = page[-1].id
