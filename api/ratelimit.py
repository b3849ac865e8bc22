"""Abuse limits in Redis: requests per minute per caller, and back-off after failed sign-ins."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import redis.asyncio as aioredis
from litestar.connection import ASGIConnection
from litestar.datastructures import MutableScopeHeaders
from litestar.enums import ScopeType
from litestar.exceptions import NotAuthorizedException, TooManyRequestsException
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from redis.exceptions import RedisError

from api.auth import Principal, log_security_event
from application.settings import Settings
from domain.errors import InvalidValue
from domain.identity import normalise_email

log = logging.getLogger(__name__)

T = TypeVar("T")

WINDOW_SECONDS = 60
DEFAULT_GROUP = "default"
LOGIN_WINDOW_SECONDS = 15 * 60  # failures this close together add up; also the longest back-off

# A fixed window that starts with the caller's first request: count, and seconds left.
_HIT = """
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
local ttl = redis.call('TTL', KEYS[1])
if ttl < 0 then redis.call('EXPIRE', KEYS[1], ARGV[1]); ttl = tonumber(ARGV[1]) end
return {count, ttl}
"""

# One more failure; from the limit on, a lock that doubles with every further failure.
_FAIL = """
local count = redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], ARGV[1])
local limit = tonumber(ARGV[2])
if count >= limit then
  local lock = math.min(tonumber(ARGV[1]), tonumber(ARGV[3]) * 2 ^ (count - limit))
  redis.call('SET', KEYS[2], '1', 'EX', math.max(1, math.floor(lock)))
end
return count
"""


def client_address(scope: Scope) -> str:
    """The client's IP address as the server saw it (uvicorn applies trusted proxy headers)."""
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


def rate_limit_middleware(app: ASGIApp) -> ASGIApp:
    """Count requests per caller (user, API key, or address when anonymous) and route group.

    A route joins a group with `opt={"rate_limit": "<group>"}`; PMS_RATE_LIMIT_GROUPS sets a
    group's limit, PMS_RATE_LIMIT every other route's; 0 means no limit. When Redis is down
    requests go through: rate limiting protects the service, it must not take it down.
    """

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        # Health checks, metrics scrapes and the docs are not the API's callers.
        if scope["type"] != ScopeType.HTTP or not scope["path"].startswith("/api/"):
            await app(scope, receive, send)
            return
        services = scope["app"].state.services
        settings: Settings = services.settings
        handler = scope.get("route_handler")
        group = str(handler.opt.get("rate_limit", DEFAULT_GROUP)) if handler else DEFAULT_GROUP
        limit = dict(settings.rate_limit_groups).get(group, settings.rate_limit_per_minute)
        if limit <= 0:
            await app(scope, receive, send)
            return
        user = scope.get("user")
        caller = user.actor if isinstance(user, Principal) else f"ip:{client_address(scope)}"
        try:
            count, reset = await services.redis.eval(
                _HIT, 1, f"pms:ratelimit:{group}:{caller}", str(WINDOW_SECONDS)
            )
        except RedisError as exc:
            log.warning("rate limiting skipped: %s", exc)
            await app(scope, receive, send)
            return
        headers = {
            "RateLimit-Limit": str(limit),
            "RateLimit-Remaining": str(max(0, limit - int(count))),
            "RateLimit-Reset": str(int(reset)),
            "RateLimit-Policy": f"{limit};w={WINDOW_SECONDS}",
        }
        if int(count) > limit:
            raise TooManyRequestsException(
                f"more than {limit} requests per minute; try again in {reset} s",
                headers={**headers, "Retry-After": str(int(reset))},
            )

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                response_headers = MutableScopeHeaders.from_message(message)
                for name, value in headers.items():
                    response_headers[name] = value
            await send(message)

        await app(scope, receive, send_with_headers)

    return middleware


class LoginThrottle:
    """Back-off after failed sign-ins, per account and per client address."""

    def __init__(
        self,
        redis: aioredis.Redis,
        settings: Settings,
        connection: ASGIConnection[Any, Any, Any, Any],
    ) -> None:
        self._redis = redis
        self._settings = settings
        self._connection = connection
        self._address = client_address(connection.scope)

    def _slots(self, account: str) -> list[tuple[str, str, int]]:
        """(failure counter, lock, limit) per account and per address."""
        hashed = hashlib.sha256(account.encode()).hexdigest()[:32]
        return [
            (
                f"pms:login:failures:account:{hashed}",
                f"pms:login:lock:account:{hashed}",
                self._settings.login_max_attempts,
            ),
            (
                f"pms:login:failures:ip:{self._address}",
                f"pms:login:lock:ip:{self._address}",
                self._settings.login_ip_max_attempts,
            ),
        ]

    async def attempt(self, email: str, verify: Callable[[], Awaitable[T | None]]) -> T:
        """Run `verify` unless a back-off is in force; count a failure when it finds nobody."""
        account = _account(email)
        slots = self._slots(account)
        waits = [await self._redis.ttl(lock) for _, lock, _ in slots]
        if max(waits) > 0:
            log_security_event("login_throttled", self._connection, ip=self._address)
            raise TooManyRequestsException(
                f"too many failed sign-ins; try again in {max(waits)} s",
                headers={"Retry-After": str(max(waits))},
            )
        found = await verify()
        if found is not None:
            await self._redis.delete(slots[0][0])
            return found
        for counter, lock, limit in slots:
            await self._redis.eval(
                _FAIL,
                2,
                counter,
                lock,
                str(LOGIN_WINDOW_SECONDS),
                str(limit),
                str(self._settings.login_lockout_seconds),
            )
        log_security_event("login_failed", self._connection, account=account, ip=self._address)
        raise NotAuthorizedException("wrong email or password")


def _account(email: str) -> str:
    """The normalised email, or a marker when it is not one (it may be a mistyped password)."""
    try:
        return normalise_email(email)
    except InvalidValue:
        return "(not an email)"
