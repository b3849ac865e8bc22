"""What every projection is: events in, read-model rows and change notices out."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from eventsourcing.domain import DomainEventProtocol
from psycopg import AsyncCursor

SCHEMA = "read"


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
    ddl: str  # CREATE TABLE IF NOT EXISTS ... in schema `read`
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
    """Projections that share one consumer and one tracked position."""

    name: str
    projections: tuple[Projection, ...]
