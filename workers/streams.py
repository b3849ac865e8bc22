"""JetStream streams: the event transport and the change feed."""

from __future__ import annotations

from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import NotFoundError

from workers.envelope import CHANGES_SUBJECT_PREFIX, EVENTS_SUBJECT_PREFIX

CHANGES_STREAM = "PMS_CHANGES"
DEDUP_WINDOW_SECONDS = 600.0
DAY = 24 * 3600.0


async def _ensure(js: JetStreamContext, config: StreamConfig) -> None:
    try:
        await js.stream_info(str(config.name))
    except NotFoundError:
        await js.add_stream(config)
    else:
        await js.update_stream(config)


async def ensure_streams(js: JetStreamContext, events_stream: str) -> None:
    """Create or update both streams (idempotent)."""
    await _ensure(
        js,
        StreamConfig(
            name=events_stream,
            subjects=[f"{EVENTS_SUBJECT_PREFIX}.>"],
            retention=RetentionPolicy.LIMITS,
            storage=StorageType.FILE,
            discard=DiscardPolicy.OLD,
            max_age=7 * DAY,  # transport only: the event store is the source of truth
            duplicate_window=DEDUP_WINDOW_SECONDS,
        ),
    )
    await _ensure(
        js,
        StreamConfig(
            name=CHANGES_STREAM,
            subjects=[f"{CHANGES_SUBJECT_PREFIX}.>"],
            retention=RetentionPolicy.LIMITS,
            storage=StorageType.FILE,
            discard=DiscardPolicy.OLD,
            max_age=DAY,
            duplicate_window=DEDUP_WINDOW_SECONDS,
        ),
    )
