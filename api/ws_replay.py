"""Replaying missed changes from the JetStream change stream for `subscribe` with `since`."""

from __future__ import annotations

import re

from nats.aio.client import Client as NatsClient
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from api.ws_hub import CHANGES_PREFIX, WsClient, position_of

CHANGES_STREAM = "PMS_CHANGES"
REPLAY_BATCH = 256


# Tokens of a change subject: no space, control character or wildcard can reach the NATS
# protocol line (api/ws.py's parse_topic already refuses them; this keeps it so).
_SUBJECT = re.compile(r"[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*")


def subject_filter(subject: str, exact: bool) -> str:
    """`inventory.<id>` stays as it is; the prefix `inventory.` becomes `inventory.>`."""
    if not _SUBJECT.fullmatch(subject if exact else subject.removesuffix(".")):
        raise ValueError(f"not a change subject: {subject!r}")
    return CHANGES_PREFIX + (subject if exact else subject + ">")


async def replay(nats: NatsClient, client: WsClient, subject: str, since: int) -> int:
    """Queue every stored change on `subject` after position `since`; return the last sent."""
    js = nats.jetstream()
    consumer = await js.pull_subscribe(
        subject,
        stream=CHANGES_STREAM,
        config=ConsumerConfig(
            deliver_policy=DeliverPolicy.ALL,
            ack_policy=AckPolicy.NONE,
            inactive_threshold=30.0,
        ),
    )
    last = since
    try:
        pending = (await consumer.consumer_info()).num_pending
        while pending:
            try:
                messages = await consumer.fetch(min(REPLAY_BATCH, pending), timeout=2.0)
            except (NatsTimeoutError, TimeoutError):
                break
            for message in messages:
                pending -= 1
                position = position_of(message.data)
                if position > last:
                    client.send(message.data)
                    last = position
    finally:
        await consumer.unsubscribe()
    return last
