"""Who issued a command and in answer to what: stored as metadata on every event."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import uuid4


@dataclass(frozen=True)
class CommandContext:
    """Actor (`user:<id>`, `apikey:<id>` or `system:<name>`), correlation and causation ids."""

    actor: str
    correlation_id: str
    causation_id: str

    @classmethod
    def system(cls, name: str) -> CommandContext:
        """A context for work the system does on its own (migrations, first admin)."""
        request = str(uuid4())
        return cls(actor=f"system:{name}", correlation_id=request, causation_id=request)

    def metadata(self) -> dict[str, str]:
        """The metadata stored beside each event of the command."""
        return {
            "actor": self.actor,
            "correlationId": self.correlation_id,
            "causationId": self.causation_id,
        }
