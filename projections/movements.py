"""What each stock item event does to on hand, reserved and backordered units."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from domain.inventory import StockItem


@dataclass(frozen=True)
class Movement:
    """The effect of one stock item event."""

    kind: str
    on_hand: int = 0
    reserved: int = 0
    backordered: int = 0
    reason: str = ""
    document: str | None = None


def movement_of(event: Any) -> Movement | None:
    """The movement an event records, or None for events that move nothing."""
    match event:
        case StockItem.Received():
            return Movement("received", on_hand=event.quantity, reason=event.reason,
                            document=event.document)  # fmt: skip
        case StockItem.Adjusted():
            return Movement("adjusted", on_hand=event.quantity, reason=event.reason,
                            document=event.document)  # fmt: skip
        case StockItem.Reserved():
            return Movement("reserved", reserved=event.quantity, backordered=event.backordered,
                            reason="reserved", document=event.document)  # fmt: skip
        case StockItem.Released():
            return Movement("released", reserved=-event.quantity, backordered=-event.backordered,
                            reason=event.reason, document=event.document)  # fmt: skip
        case StockItem.BackorderAllocated():
            return Movement("backorder_allocated", reserved=event.quantity,
                            backordered=-event.quantity, reason="backorder allocated",
                            document=event.document)  # fmt: skip
        case StockItem.Issued():
            return Movement("issued", on_hand=-event.quantity, reserved=-event.quantity,
                            reason=event.reason, document=event.document)  # fmt: skip
        case StockItem.TransferredOut():
            return Movement("transferred_out", on_hand=-event.quantity, reason="transfer",
                            document=event.document)  # fmt: skip
        case StockItem.TransferredIn():
            return Movement("transferred_in", on_hand=event.quantity, reason="transfer",
                            document=event.document)  # fmt: skip
        case StockItem.Counted():
            return Movement("counted", on_hand=event.quantity, reason="physical count",
                            document=event.document)  # fmt: skip
    return None
