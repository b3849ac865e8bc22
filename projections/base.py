"""What every projection is: events in, read-model rows and change notices out."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

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

    def handles(self, event: DomainEventProtocol[Any]) -> bool:
        """Whether `apply` has anything to do for this event."""
        ...

    async def apply(
        self, cursor: AsyncCursor[Any], event: DomainEventProtocol[Any], info: EventInfo
    ) -> list[Change]:
        """Change rows for one event inside the caller's transaction."""
        ...


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

    def tables(self) -> tuple[str, ...]:
        """Every read-model table of the group, in projection order."""
        return tuple(table for projection in self.projections for table in projection.tables)
