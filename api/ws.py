"""The websocket endpoint: authenticate, subscribe to topics, receive committed changes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from typing import Any

import msgspec
from litestar import WebSocket, websocket
from litestar.datastructures import State
from litestar.exceptions import NotAuthorizedException, WebSocketDisconnect

from api.auth import API_KEY_HEADER, Principal, authenticate_token
from api.dependencies import services
from api.ws_hub import WsClient
from api.ws_replay import replay, subject_filter
from application.permissions import Permission, allows
from projections.positions import lowest_position
from projections.registry import projection_groups

log = logging.getLogger(__name__)

CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_TOO_SLOW = 4408
CLOSE_IDLE = 4000
AUTH_TIMEOUT_SECONDS = 10.0
IDLE_TIMEOUT_SECONDS = 120.0

# Websocket topic family -> (change-subject stem, permission needed to see it).
TOPICS: dict[str, tuple[str, Permission]] = {
    "inventory": ("inventory", Permission.INVENTORY_READ),
    "orders": ("orders", Permission.ORDERS_READ),
    "alerts": ("alerts", Permission.INVENTORY_READ),
}


class ClientMessage(msgspec.Struct, frozen=True):
    """What a client may send."""

    type: str
    topic: str | None = None
    token: str | None = None
    since: int | None = None


_decoder = msgspec.json.Decoder(ClientMessage)
_encoder = msgspec.json.Encoder()


# A topic's key is the id of a product or an order, as the change subjects spell it (lowercase);
# anything else could break or widen the NATS subject it becomes (spaces, CR LF, wildcards).
_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE)
TOPIC_FORMS = "inventory:<productId>, inventory:*, orders:<orderId>, orders:* or alerts"


def parse_topic(topic: str) -> tuple[str, bool, Permission] | None:
    """`inventory:<uuid>` -> (`inventory.<uuid>`, exact, permission); None unless the topic is
    one of TOPIC_FORMS."""
    family, _, key = topic.partition(":")
    known = TOPICS.get(family)
    if known is None:
        return None
    stem, permission = known
    if family == "alerts":
        return (stem, True, permission) if topic == "alerts" else None
    if key == "*":
        return (f"{stem}.", False, permission)
    if not _ID.fullmatch(key):
        return None
    return (f"{stem}.{key.lower()}", True, permission)


async def _authenticate(socket: WebSocket[Any, Any, Any]) -> Principal | None:
    # An access token or an API key: `?token=`, an `X-API-Key` header, or a first message.
    token = socket.query_params.get("token") or socket.headers.get(API_KEY_HEADER)
    if token is None:
        try:
            raw = await asyncio.wait_for(socket.receive_text(), AUTH_TIMEOUT_SECONDS)
            first = _decoder.decode(raw)
        except (TimeoutError, msgspec.DecodeError):
            return None
        if first.type != "auth" or not first.token:
            return None
        token = first.token
    try:
        return await authenticate_token(services(socket.app.state), token)
    except NotAuthorizedException:
        return None


async def _pump(socket: WebSocket[Any, Any, Any], client: WsClient) -> None:
    while True:
        payload = await client.queue.get()
        if payload is None:
            await socket.close(CLOSE_TOO_SLOW, "too slow")
            return
        if not payload:
            await socket.close()
            return
        await socket.send_text(payload.decode())


def _error(client: WsClient, text: str) -> None:
    client.send(_encoder.encode({"type": "error", "message": text}))


async def _handle(
    socket: WebSocket[Any, Any, Any], client: WsClient, principal: Principal, state: State
) -> bool:
    """React to one client message; False when the socket must close."""
    try:
        raw = await asyncio.wait_for(socket.receive_text(), IDLE_TIMEOUT_SECONDS)
    except TimeoutError:
        await socket.close(CLOSE_IDLE, "idle: send a ping at least every 2 minutes")
        return False
    try:
        message = _decoder.decode(raw)
    except msgspec.DecodeError:
        _error(client, "not a valid message")
        return True
    if message.type == "ping":
        client.send(_encoder.encode({"type": "pong"}))
        return True
    if message.type not in ("subscribe", "unsubscribe"):
        _error(client, f"unknown type {message.type!r}")
        return True
    parsed = parse_topic(message.topic or "")
    if parsed is None:
        shown = (message.topic or "")[:100]
        _error(client, f"unknown topic {shown!r}: topics are {TOPIC_FORMS}")
        return True
    subject, exact, permission = parsed
    if not allows(principal.role, permission):
        await socket.close(CLOSE_FORBIDDEN, "topic not allowed for this role")
        return False
    target = client.exact if exact else client.prefixes
    if message.type == "unsubscribe":
        target.discard(subject)
        client.send(_encoder.encode({"type": "unsubscribed", "topic": message.topic}))
        return True
    found = services(state)
    groups = tuple(group.name for group in projection_groups())
    async with found.pool.connection() as connection:
        position = await lowest_position(connection, groups)
    if message.since is None:
        target.add(subject)
        client.send(
            _encoder.encode({"type": "subscribed", "topic": message.topic, "position": position})
        )
        return True
    # Live messages are held from now on, so none slips between the replay and going live.
    client.holding += 1
    target.add(subject)
    client.send(
        _encoder.encode(
            {
                "type": "subscribed",
                "topic": message.topic,
                "position": position,
                "since": message.since,
            }
        )
    )
    replayed = message.since
    try:
        replayed = await replay(found.nats, client, subject_filter(subject, exact), message.since)
    finally:
        client.release(replayed)
    return True


@websocket("/api/v1/ws", opt={"exclude_from_auth": True})
async def changes_socket(socket: WebSocket[Any, Any, Any], state: State) -> None:
    """Live `inventory_update` (and later order and alert) messages for subscribed topics."""
    await socket.accept()
    principal = await _authenticate(socket)
    if principal is None:
        await socket.close(CLOSE_UNAUTHENTICATED, "authentication required")
        return
    hub = services(state).hub
    client = hub.connect()
    pump = asyncio.create_task(_pump(socket, client))
    try:
        while not pump.done() and await _handle(socket, client, principal, state):
            pass
    except WebSocketDisconnect:
        pass
    finally:
        hub.disconnect(client)
        pump.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await pump
