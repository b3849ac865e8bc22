"""Idempotency-Key: a repeated POST with the same key and body gets the original answer."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from api.auth import Principal

HEADER = b"idempotency-key"
TTL_SECONDS = 24 * 3600
IN_FLIGHT_TTL_SECONDS = 60
MAX_KEY_LENGTH = 255
# Answers a retry should be free to change are not remembered: server errors (5xx, 503 when a
# read model is behind), 408, 425, 429, and any answer that says when to try again
# (Retry-After), such as the 409 of a command that lost to concurrent writers. Other 4xx
# answers (an illegal transition, a duplicate key) are the outcome, and are remembered.
_NOT_REMEMBERED = {408, 425, 429}
_NOT_STORED = ("/api/v1/auth/", "/api/v1/api-keys")


async def _send_problem(send: Send, status: int, code: str, title: str, detail: str) -> None:
    body = {"type": f"/problems/{code}", "title": title, "status": status, "detail": detail}
    headers = [(b"content-type", b"application/problem+json")]
    start: Any = {"type": "http.response.start", "status": status, "headers": headers}
    await send(start)
    end: Any = {"type": "http.response.body", "body": json.dumps(body).encode()}
    await send(end)


def idempotency_middleware(app: ASGIApp) -> ASGIApp:
    """Remember POST answers per (caller, path, key) in Redis for 24 hours."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        key = dict(scope["headers"]).get(HEADER) if scope["type"] == ScopeType.HTTP else None
        path = str(scope.get("path", ""))
        # Answers that carry secrets (tokens, a new API key) are never stored.
        if key is None or scope.get("method") != "POST" or path.startswith(_NOT_STORED):
            await app(scope, receive, send)
            return
        if not 0 < len(key) <= MAX_KEY_LENGTH:
            detail = "Idempotency-Key must be 1-255 characters"
            await _send_problem(send, 400, "bad-request", "Bad request", detail)
            return
        limit = scope["app"].state.services.settings.max_body_bytes
        messages: list[Any] = []
        body = b""
        while True:
            message: Any = await receive()
            messages.append(message)
            body += message.get("body", b"")
            if len(body) > limit:
                detail = f"the body exceeds {limit} bytes"
                await _send_problem(
                    send, 413, "payload-too-large", "Request body too large", detail
                )
                return
            if not message.get("more_body"):
                break
        fingerprint = hashlib.sha256(body).hexdigest()
        user = scope.get("user")
        caller = user.actor if isinstance(user, Principal) else "anonymous"
        redis = scope["app"].state.services.redis
        slot = f"pms:idempotency:{caller}:{scope['path']}:{key.decode('latin-1')}"
        claimed = await redis.set(
            slot, json.dumps({"fingerprint": fingerprint}), nx=True, ex=IN_FLIGHT_TTL_SECONDS
        )
        if not claimed:
            await _answer_repeat(send, await redis.get(slot), fingerprint)
            return

        replay = iter(messages)

        async def replay_receive() -> Any:
            return next(replay, {"type": "http.disconnect"})

        status: dict[str, Any] = {}
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                status["headers"] = [
                    [k.decode("latin-1"), v.decode("latin-1")] for k, v in message["headers"]
                ]
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
            await send(message)

        try:
            await app(scope, replay_receive, capture)
        except BaseException:
            await redis.delete(slot)
            raise
        code = status.get("code", 500)
        if _retryable(code, status.get("headers", [])):
            await redis.delete(slot)
            return
        record = {
            "fingerprint": fingerprint,
            "status": code,
            "headers": status.get("headers", []),
            "body": b"".join(chunks).decode("utf-8", "replace"),
        }
        await redis.set(slot, json.dumps(record), ex=TTL_SECONDS)

    return middleware


def _retryable(code: int, headers: list[list[str]]) -> bool:
    """Whether the answer is one a retry with the same key may change (see _NOT_REMEMBERED)."""
    return (
        code >= 500
        or code in _NOT_REMEMBERED
        or any(name.lower() == "retry-after" for name, _ in headers)
    )


async def _answer_repeat(send: Send, stored: bytes | None, fingerprint: str) -> None:
    record = json.loads(stored) if stored else {}
    if record.get("fingerprint") != fingerprint:
        detail = "this Idempotency-Key was used with a different request body"
        await _send_problem(send, 422, "idempotency-key-reused", "Idempotency key reused", detail)
        return
    if "status" not in record:
        detail = "a request with this Idempotency-Key is still being processed"
        await _send_problem(send, 409, "idempotency-in-flight", "Request in progress", detail)
        return
    headers = [
        (k.encode("latin-1"), v.encode("latin-1"))
        for k, v in record["headers"]
        if k.lower() not in ("content-length", "x-request-id")
    ]
    headers.append((b"idempotent-replayed", b"true"))
    body = record["body"].encode()
    headers.append((b"content-length", str(len(body)).encode()))
    start: Any = {"type": "http.response.start", "status": record["status"], "headers": headers}
    await send(start)
    end: Any = {"type": "http.response.body", "body": body}
    await send(end)
