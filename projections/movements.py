"""What each stock item event does to on hand, reserved and backordered units."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any, NamedTuple, cast

from domain.inventory import StockItem


class Movement(NamedTuple):
    """The effect of one stock item event (a tuple: projections make millions of them)."""

    kind: str
    on_hand: int = 0
    reserved: int = 0
    backordered: int = 0
    reason: str = ""
    document: str | None = None


_movement = cast(
    Callable[[tuple[str, int, int, int, str, str | None]], Movement],
    partial(tuple.__new__, Movement),
)
"""Movement(*fields) without NamedTuple's Python-level __new__: a rebuild makes four per event."""

_MOVEMENTS: dict[type, Callable[[Any], Movement]] = {
    StockItem.Received: lambda e: _movement(("received", e.quantity, 0, 0, e.reason, e.document)),
    StockItem.Adjusted: lambda e: _movement(("adjusted", e.quantity, 0, 0, e.reason, e.document)),
    StockItem.Reserved: lambda e: _movement(
        ("reserved", 0, e.quantity, e.backordered, "reserved", e.document)
    ),
    StockItem.Released: lambda e: _movement(
        ("released", 0, -e.quantity, -e.backordered, e.reason, e.document)
    ),
    StockItem.BackorderAllocated: lambda e: _movement(
        ("backorder_allocated", 0, e.quantity, -e.quantity, "backorder allocated", e.document)
    ),
    StockItem.Issued: lambda e: _movement(
        ("issued", -e.quantity, -e.quantity, 0, e.reason, e.document)
    ),
    StockItem.TransferredOut: lambda e: _movement(
        ("transferred_out", -e.quantity, 0, 0, "transfer", e.document)
    ),
    StockItem.TransferredIn: lambda e: _movement(
        ("transferred_in", e.quantity, 0, 0, "transfer", e.document)
    ),
    StockItem.Counted: lambda e: _movement(
        ("counted", e.quantity, 0, 0, "physical count", e.document)
    ),
}

MOVING_ON_HAND = frozenset(
    {
        StockItem.Received,
        StockItem.Adjusted,
        StockItem.Issued,
        StockItem.TransferredOut,
        StockItem.TransferredIn,
        StockItem.Counted,
    }
)
"""Event types that can change on hand units (a count may change none)."""


def movement_of(event: Any) -> Movement | None:
    """The movement an event records, or None for events that move nothing."""
    make = _MOVEMENTS.get(type(event))
    return None if make is None else make(event)
