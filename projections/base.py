"""What every projection is: events in, read-model rows and change notices out."""

from __future__ import annotations

from collections.abc import Sequence, Set
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from eventsourcing.domain import DomainEventProtocol
from psycopg import AsyncCursor

SCHEMA = "read"
"""The schema of the main group's read models: readers and the group's projector find their
tables through `search_path`, so that a rebuild can build the same tables in another schema."""


@dataclass(frozen=True)
class EventInfo:
    """Where an event sits in the store and who caused it."""

    position: int
    timestamp: datetime
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def actor(self) -> str:
        """Who issued the command that stored the event."""
        return str(self.metadata.get("actor", ""))


@dataclass(frozen=True)
class Change:
    """A committed read-model change, published on `pms.changes.<topic>`."""

    topic: str  # e.g. "inventory.<productId>"
    event: str  # e.g. "inventory_update"
    data: dict[str, Any]
    position: int = 0  # of the event that caused it; set by the projector


class Projection(Protocol):
    """Folds events into read-model tables; must give the same rows live or rebuilt."""

    name: str
    ddl: str  # CREATE TABLE IF NOT EXISTS <unqualified name>: created in the search_path schema
    tables: tuple[str, ...]
    reads: tuple[str, ...]  # tables of other projections (earlier in the group) that it reads

    def handles(self, event: DomainEventProtocol[Any]) -> bool:
        """Whether `apply` may have something to do for events of this event's type (the
        answer must depend on the type alone: the group asks once per type)."""
        ...

    async def apply(
        self, cursor: AsyncCursor[Any], event: DomainEventProtocol[Any], info: EventInfo
    ) -> list[Change]:
        """Change rows for one event inside the caller's transaction."""
        ...


Stamped = tuple[DomainEventProtocol[Any], EventInfo]
"""An event with where it sits in the store."""


@runtime_checkable
class BatchProjection(Projection, Protocol):
    """A projection that applies a run of consecutive events in a few set-based statements.

    `apply_batch` must write the rows and return the changes that applying the events one by
    one, in order, would (each change carrying its event's position); `apply` is the batch
    of one. The group hands it runs of events that every projection handling them batches,
    after the earlier projections of the group have applied the same run. With `announce`
    False nobody publishes the changes (a rebuild): it may return none, the rows must be the
    same.
    """

    def batches(self, event: DomainEventProtocol[Any]) -> bool:
        """Whether events of this event's type may join runs (by type alone, as `handles`);
        the others are applied one at a time, between runs."""
        ...

    async def apply_batch(
        self, cursor: AsyncCursor[Any], events: Sequence[Stamped], *, announce: bool = True
    ) -> list[Change]:
        """Change rows for the events, in order, inside the caller's transaction."""
        ...


class RunApplier:
    """Base of batch projections whose `apply` is the run of one event."""

    def batches(self, event: DomainEventProtocol[Any]) -> bool:
        """Every event it handles may join runs."""
        return True

    async def apply(
        self, cursor: AsyncCursor[Any], event: DomainEventProtocol[Any], info: EventInfo
    ) -> list[Change]:
        """Change rows for one event: a run of one."""
        return await self.apply_batch(cursor, [(event, info)])

    async def apply_batch(
        self, cursor: AsyncCursor[Any], events: Sequence[Stamped], *, announce: bool = True
    ) -> list[Change]:
        """Change rows for the events, in order (see BatchProjection)."""
        raise NotImplementedError


@dataclass(frozen=True)
class ProjectionGroup:
    """Projections that share one consumer, one tracked position and one schema.

    Every SQL statement of the group's projections and queries names tables without a schema;
    the connection's `search_path` picks the version: `schema` for the live projector and the
    API, `<schema>_next` while a rebuild builds the next version. A group owns its schema
    (the position table lives there too), so a rebuild swaps exactly the group's tables.
    """

    name: str
    projections: tuple[Projection, ...]
    schema: str = SCHEMA
    _dispatch: dict[type, Dispatch] = field(
        default_factory=dict, init=False, compare=False, repr=False
    )

    def tables(self) -> tuple[str, ...]:
        """Every read-model table of the group, in projection order."""
        return tuple(table for projection in self.projections for table in projection.tables)

    def dispatch(self, event: DomainEventProtocol[Any]) -> Dispatch:
        """Which projections handle the event, whether it can join a run and which tables
        applying it reads and writes (worked out once per event type)."""
        found = self._dispatch.get(type(event))
        if found is None:
            handlers = tuple(p for p in self.projections if p.handles(event))
            found = self._dispatch[type(event)] = Dispatch(
                handlers=handlers,
                batched=bool(handlers)
                and all(isinstance(p, BatchProjection) and p.batches(event) for p in handlers),
                reads=frozenset(table for p in handlers for table in p.reads),
                writes=frozenset(table for p in handlers for table in p.tables),
            )
        return found


@dataclass(frozen=True)
class Dispatch:
    """What applying events of one type involves."""

    handlers: tuple[Projection, ...]  # in group order
    batched: bool  # handled, and batched by every projection that handles it: it can join runs
    reads: frozenset[str]  # other projections' tables its handlers read
    writes: frozenset[str]  # the tables its handlers own

    def commutes(self, reads: Set[str], writes: Set[str]) -> bool:
        """Whether applying an event of this type before or after work that reads `reads` and
        writes `writes` gives the same rows: neither writes what the other reads or writes."""
        return not (self.writes & reads or self.writes & writes or self.reads & writes)
