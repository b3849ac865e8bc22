"""Warehouses and stores that hold stock."""

from __future__ import annotations

from typing import Literal

from eventsourcing.domain import Aggregate, event

from domain.values import required_text

LocationKind = Literal["warehouse", "store"]


class Location(Aggregate):
    """A place that holds stock, identified by a unique code."""

    class Created(Aggregate.Created):
        code: str
        name: str
        kind: str
        address: str

    @event(Created)
    def __init__(self, code: str, name: str, kind: str, address: str) -> None:
        self.code = code
        self.name = name
        self.kind = kind
        self.address = address
        self.active = True

    @classmethod
    def create(cls, *, code: str, name: str, kind: LocationKind, address: str = "") -> Location:
        """A new active location; `code` must already be normalised and claimed."""
        return cls(code=code, name=required_text(name, "name"), kind=kind, address=address.strip())

    class Renamed(Aggregate.Event):
        name: str
        address: str

        def apply(self, location: Location) -> None:
            location.name = self.name
            location.address = self.address

    class Deactivated(Aggregate.Event):
        def apply(self, location: Location) -> None:
            location.active = False

    def rename(self, *, name: str, address: str) -> None:
        """Change the display name or address."""
        name = required_text(name, "name")
        if (name, address.strip()) != (self.name, self.address):
            self.trigger_event(self.Renamed, name=name, address=address.strip())

    def deactivate(self) -> None:
        """Stop using the location; its stock history stays."""
        if self.active:
            self.trigger_event(self.Deactivated)
