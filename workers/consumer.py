"""Feeds a projection group from its durable JetStream consumer and announces changes."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

import msgspec
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from psycopg import AsyncConnection
from psycopg.rows import TupleRow

from projections.base import Change
from workers import envelope
from workers.projector import (
    STORE_PAGE,
    BatchResult,
    GroupProjector,
    Incoming,
    ProjectionFailed,
)

log = logging.getLogger(__name__)

FETCH_BATCH = 256
_change_encoder = msgspec.json.Encoder()


def consumer_name(group: str) -> str:
    """The durable consumer of a projection group."""
    return f"projector-{group}"


async def publish_changes(js: JetStreamContext, changes: Sequence[Change]) -> None:
    """Publish committed changes on `pms.changes.<topic>` (deduplicated by position)."""
    acks = []
    for change in changes:
        body = _change_encoder.encode(
            {"event": change.event, "position": change.position, "data": change.data}
        )
        acks.append(
            await js.publish_async(
                f"{envelope.CHANGES_SUBJECT_PREFIX}.{change.topic}",
                body,
                headers={"Nats-Msg-Id": f"{change.position}:{change.topic}"},
            )
        )
    await asyncio.gather(*acks)


async def run_consumer(
    projector: GroupProjector,
    connection: AsyncConnection[TupleRow],
    js: JetStreamContext,
    stream: str,
    stop: asyncio.Event,
) -> None:
    """Catch up from the store, then fetch, apply in one transaction, publish the changes
    and ack; until `stop`."""
    await projector.ensure_tracking(connection)
    leftover = await projector.unpublished_changes(connection)
    if leftover:
        log.warning("publishing %d changes left by an interrupted run", len(leftover))
        await publish_changes(js, leftover)
        await projector.forget_published(connection, leftover[-1].position)
    try:
        await _catch_up(projector, connection, js, stop)
        subscription, ack_all = await _subscribe(js, projector.group.name, stream)
        # What was published before a new consumer existed is not delivered: read it too.
        await _catch_up(projector, connection, js, stop)
        log.info("projector %s consuming %s", projector.group.name, stream)
        while not stop.is_set():
            try:
                messages = await subscription.fetch(FETCH_BATCH, timeout=0.5)
            except (NatsTimeoutError, TimeoutError):
                # Nothing delivered: what the store holds beyond the position (an event too big
                # to publish, or everything while the relay is down) is read from there.
                await _catch_up(projector, connection, js, stop)
                continue
            batch = [
                Incoming(
                    notification=envelope.decode(message.data),
                    previous=int((message.headers or {}).get(envelope.PREVIOUS_HEADER, "0")),
                )
                for message in messages
            ]
            result = await projector.apply_batch(connection, batch)
            if result.caught_up:
                log.warning(
                    "projector %s read %d missing events from the store",
                    projector.group.name,
                    result.caught_up,
                )
            await _publish(projector, connection, js, result)
            for message in messages[-1:] if ack_all else messages:
                await message.ack()
    except ProjectionFailed as failure:
        await _stop_on_poison(projector, connection, js, failure, stop)


async def _catch_up(
    projector: GroupProjector,
    connection: AsyncConnection[TupleRow],
    js: JetStreamContext,
    stop: asyncio.Event,
) -> None:
    """Apply what the store holds beyond the group's position, a page per transaction.

    After a restart or behind a backlog, pages read from the store (the next one while this
    one is applied) go several times faster than the same events delivered as messages.
    """
    done = 0
    pending = asyncio.ensure_future(projector.stored(await projector.position(connection)))
    try:
        while not stop.is_set():
            page = await pending
            if not page:
                break
            pending = asyncio.ensure_future(projector.stored(page[-1].notification.id))
            result = await projector.apply_batch(connection, page)
            await _publish(projector, connection, js, result)
            done += result.applied
            if len(page) < STORE_PAGE:
                break  # near the head: messages take over
    finally:
        pending.cancel()
    if done:
        log.info("projector %s caught up %d events from the store", projector.group.name, done)


async def _publish(
    projector: GroupProjector,
    connection: AsyncConnection[TupleRow],
    js: JetStreamContext,
    result: BatchResult,
) -> None:
    if result.changes:
        await publish_changes(js, result.changes)
        await projector.forget_published(connection, result.position)


async def _subscribe(
    js: JetStreamContext, group: str, stream: str
) -> tuple[JetStreamContext.PullSubscription, bool]:
    """The group's durable consumer, and whether one ack covers every earlier message.

    A new consumer starts at new messages (the store caught the group up to them) and acks
    cumulatively; a consumer made by an earlier version is used as it is.
    """
    subscription = await js.pull_subscribe(
        f"{envelope.EVENTS_SUBJECT_PREFIX}.>",
        durable=consumer_name(group),
        stream=stream,
        config=ConsumerConfig(
            ack_policy=AckPolicy.ALL,
            deliver_policy=DeliverPolicy.NEW,
            ack_wait=30.0,
            max_ack_pending=FETCH_BATCH * 4,
        ),
    )
    info = await subscription.consumer_info()
    return subscription, info.config.ack_policy == AckPolicy.ALL


async def _stop_on_poison(
    projector: GroupProjector,
    connection: AsyncConnection[TupleRow],
    js: JetStreamContext,
    failure: ProjectionFailed,
    stop: asyncio.Event,
) -> None:
    """Record the failure, tell subscribers of `alerts`, and wait: other groups go on."""
    log.error("%s", failure)
    await connection.rollback()
    await projector.mark_failed(connection, failure)
    alert = Change(
        topic="alerts",
        event="system_alert",
        position=failure.position,
        data={
            "type": "projection_failed",
            "message": str(failure),
            "group": failure.group,
            "failedPosition": failure.position,
        },
    )
    await publish_changes(js, [alert])
    await stop.wait()  # unacked messages are redelivered when the worker restarts
