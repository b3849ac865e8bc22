"""The websocket hub's per-client queueing: slow clients are cut off, replays hold live ones."""

from __future__ import annotations

import json

from api.ws import parse_topic
from api.ws_hub import CLIENT_QUEUE_LIMIT, WsClient
from application.permissions import Permission


def _change(position: int) -> bytes:
    return json.dumps({"event": "inventory_update", "position": position, "data": {}}).encode()


def test_a_client_that_cannot_keep_up_is_cut_off_not_waited_for() -> None:
    client = WsClient()
    for position in range(CLIENT_QUEUE_LIMIT + 1):
        client.offer(_change(position))
    assert client.too_slow
    assert client.queue.qsize() == 1
    assert client.queue.get_nowait() is None  # the pump closes the socket on this


def test_live_messages_wait_during_a_replay_and_duplicates_are_dropped() -> None:
    client = WsClient()
    client.holding += 1
    for position in (5, 6, 7):
        client.offer(_change(position))
    assert client.queue.empty()
    client.send(_change(5))
    client.send(_change(6))  # the replay reached position 6
    client.release(6)
    sent = [json.loads(client.queue.get_nowait() or b"{}")["position"] for _ in range(3)]
    assert sent == [5, 6, 7]
    assert client.queue.empty()


def test_topics_map_to_change_subjects_and_permissions() -> None:
    key = "0b8f1a2c-3d4e-4f50-8a6b-7c8d9e0f1a2b"
    assert parse_topic(f"inventory:{key}") == (f"inventory.{key}", True, Permission.INVENTORY_READ)
    upper = parse_topic(f"orders:{key.upper()}")
    assert upper == (f"orders.{key}", True, Permission.ORDERS_READ)  # ids compare lowercase
    assert parse_topic("inventory:*") == ("inventory.", False, Permission.INVENTORY_READ)
    assert parse_topic("orders:*") == ("orders.", False, Permission.ORDERS_READ)
    assert parse_topic("alerts") == ("alerts", True, Permission.INVENTORY_READ)
    bad_keys = ("abc", "a b", "a\r\nUNSUB 1", "a.b", ">")  # keys are ids: nothing reaches NATS
    for bad in ("", "inventory:", *(f"inventory:{k}" for k in bad_keys), "alerts:x", "payments:*"):
        assert parse_topic(bad) is None, bad
