"""Fans committed read-model changes from NATS out to this process's websocket clients."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

import msgspec
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

log = logging.getLogger(__name__)

CHANGES_PREFIX = "pms.changes."
CLIENT_QUEUE_LIMIT = 1000


@dataclass(eq=False)
class WsClient:
    """One connected socket: its subscriptions and its outgoing queue."""

    exact: set[str] = field(default_factory=set)
    prefixes: set[str] = field(default_factory=set)
    queue: asyncio.Queue[bytes | None] = field(
        default_factory=lambda: asyncio.Queue(CLIENT_QUEUE_LIMIT)
    )
    too_slow: bool = False
    holding: int = 0  # subscriptions replaying history: live messages wait in `held`
    held: list[bytes] = field(default_factory=list)

    def wants(self, topic: str) -> bool:
        """Whether a change on `topic` (e.g. `inventory.<id>`) matches a subscription."""
        return topic in self.exact or any(topic.startswith(p) for p in self.prefixes)

    def offer(self, payload: bytes) -> None:
        """Queue a message; a client that cannot keep up is cut off instead of slowing others."""
        if self.holding:
            self.held.append(payload)
            if len(self.held) > CLIENT_QUEUE_LIMIT:
                self._cut_off()
            return
        self.send(payload)

    def send(self, payload: bytes) -> None:
        """Queue a message for the socket now, whatever replay is going on."""
        try:
            self.queue.put_nowait(payload)
        except asyncio.QueueFull:
            self._cut_off()

    def release(self, replayed_up_to: int) -> None:
        """End a replay: pass on held live messages newer than what the replay sent."""
        self.holding -= 1
        if self.holding:
            return
        held, self.held = self.held, []
        for payload in held:
            if position_of(payload) > replayed_up_to:
                self.send(payload)

    def _cut_off(self) -> None:
        self.too_slow = True
        self.holding = 0
        self.held = []
        self.queue = asyncio.Queue(1)
        self.queue.put_nowait(None)


def position_of(payload: bytes) -> int:
    """The position a change message carries."""
    position = msgspec.json.decode(payload, type=_Positioned).position
    return position


class _Positioned(msgspec.Struct):
    position: int


class Hub:
    """One NATS subscription per process, dispatching to the clients that asked."""

    def __init__(self, nats: NatsClient) -> None:
        self._nats = nats
        self._subscription: Subscription | None = None
        self.clients: set[WsClient] = set()
        self._last_position: dict[str, int] = {}

    async def start(self) -> None:
        """Subscribe to every change subject."""
        self._subscription = await self._nats.subscribe(CHANGES_PREFIX + ">", cb=self._dispatch)

    async def stop(self) -> None:
        """Stop receiving and release every client."""
        if self._subscription is not None:
            await self._subscription.unsubscribe()
        for client in self.clients:
            client.offer(b"")
        self.clients.clear()

    def connect(self) -> WsClient:
        """Register a new socket."""
        client = WsClient()
        self.clients.add(client)
        return client

    def disconnect(self, client: WsClient) -> None:
        """Forget a socket."""
        self.clients.discard(client)

    async def _dispatch(self, message: Msg) -> None:
        topic = message.subject.removeprefix(CHANGES_PREFIX)
        # A projector that restarts republishes what it may not have published: drop
        # anything not newer than what this topic already carried.
        position = position_of(message.data)
        if position <= self._last_position.get(topic, 0):
            return
        self._last_position[topic] = position
        for client in list(self.clients):
            if client.wants(topic):
                client.offer(message.data)


async def publish_alert(
    nats: NatsClient, kind: str, message: str, *, position: int, **details: Any
) -> None:
    """Send a `system_alert` to every subscriber of `alerts` (through the change stream)."""
    body = {
        "event": "system_alert",
        "position": position,
        "data": {"type": kind, "message": message, **details},
    }
    await nats.jetstream().publish(CHANGES_PREFIX + "alerts", msgspec.json.encode(body))
