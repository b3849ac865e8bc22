"""How a stored event travels on NATS: body, subject and headers."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import msgspec
from eventsourcing.persistence import Notification

from application.recorder import StoredNotification

POSITION_HEADER = "Pms-Position"
PREVIOUS_HEADER = "Pms-Previous-Position"
CORRELATION_HEADER = "Pms-Correlation-Id"
EVENTS_SUBJECT_PREFIX = "pms.events"
CHANGES_SUBJECT_PREFIX = "pms.changes"


class EventEnvelope(msgspec.Struct, rename="camel", frozen=True):
    """A stored event as published: the stored JSON state is carried as it is."""

    position: int
    transaction_id: int
    originator_id: UUID
    originator_version: int
    topic: str
    state: msgspec.Raw
    metadata: dict[str, Any]


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(EventEnvelope)


def subject_for(topic: str) -> str:
    """`domain.inventory:StockItem.Received` -> `pms.events.StockItem.Received`."""
    return f"{EVENTS_SUBJECT_PREFIX}.{topic.rpartition(':')[2]}"


def encode(notification: StoredNotification) -> bytes:
    """The message body for a stored event."""
    return _encoder.encode(
        EventEnvelope(
            position=notification.id,
            transaction_id=notification.transaction_id,
            originator_id=UUID(str(notification.originator_id)),
            originator_version=notification.originator_version,
            topic=notification.topic,
            state=msgspec.Raw(notification.state),
            metadata=notification.metadata,
        )
    )


def headers(notification: Notification, previous: int, correlation_id: str) -> dict[str, str]:
    """Dedup id (the position), the previous published position and the correlation id."""
    return {
        "Nats-Msg-Id": str(notification.id),
        POSITION_HEADER: str(notification.id),
        PREVIOUS_HEADER: str(previous),
        CORRELATION_HEADER: correlation_id,
    }


def decode(body: bytes) -> StoredNotification:
    """The stored event carried by a message body."""
    envelope = _decoder.decode(body)
    return StoredNotification(
        id=envelope.position,
        originator_id=envelope.originator_id,
        originator_version=envelope.originator_version,
        topic=envelope.topic,
        state=bytes(envelope.state),
        metadata=envelope.metadata,
        transaction_id=envelope.transaction_id,
    )
