"""Dependency providers: what route handlers receive as parameters."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator
from typing import Any

from litestar import Request
from litestar.datastructures import State
from litestar.di import Provide
from litestar.exceptions import ValidationException
from psycopg import AsyncConnection

from api.auth import Principal, Sessions, TokenIssuer
from api.cache import AnswerCache
from api.errors import ProjectionBehind
from api.ratelimit import LoginThrottle
from api.services import Services
from application.context import CommandContext
from application.store import EventStore
from projections.positions import lowest_position
from projections.registry import projection_groups

MIN_POSITION_HEADER = "x-pms-min-position"


def services(state: State) -> Services:
    """The process's services."""
    found: Services = state.services
    return found


def provide_store(state: State) -> EventStore:
    """The event store seam for command handlers."""
    return services(state).store


def provide_tokens(state: State) -> TokenIssuer:
    """Signs and checks access tokens."""
    return services(state).tokens


def provide_sessions(state: State) -> Sessions:
    """Sign-in sessions: refresh-token families and revoked access tokens, in Redis."""
    found = services(state)
    return Sessions(found.redis, found.tokens)


def provide_login_throttle(request: Request[Any, Any, Any], state: State) -> LoginThrottle:
    """Back-off after failed sign-ins for this request's client."""
    found = services(state)
    return LoginThrottle(found.redis, found.settings, request)


def provide_cache(state: State) -> AnswerCache:
    """Answers of heavy read-model queries, cached per projection position."""
    return AnswerCache(services(state).redis)


def provide_context(request: Request[Any, Any, Any]) -> CommandContext:
    """Actor, correlation and causation ids of the request's command."""
    principal = request.scope.get("user")  # absent on public routes (sign-up)
    actor = principal.actor if isinstance(principal, Principal) else "anonymous"
    request_id = str(request.scope["state"].get("request_id", ""))
    return CommandContext(actor=actor, correlation_id=request_id, causation_id=request_id)


def provide_principal(request: Request[Any, Any, Any]) -> Principal:
    """The authenticated caller."""
    principal = request.user
    assert isinstance(principal, Principal)  # guaranteed by the authentication middleware
    return principal


def provide_if_match(request: Request[Any, Any, Any]) -> int | None:
    """The aggregate version named by `If-Match`, if any."""
    raw = request.headers.get("if-match")
    if raw is None:
        return None
    try:
        return int(raw.strip().strip('"').removeprefix("W/").strip('"'))
    except ValueError:
        raise ValidationException("If-Match must be an aggregate version number") from None


def _min_position(request: Request[Any, Any, Any]) -> int:
    raw = request.headers.get(MIN_POSITION_HEADER)
    if raw is None:
        return 0
    try:
        value = int(raw)
    except ValueError:
        raise ValidationException("X-PMS-Min-Position must be an integer position") from None
    if value < 0:
        raise ValidationException("X-PMS-Min-Position must not be negative")
    return value


async def provide_reader(
    request: Request[Any, Any, Any], state: State
) -> AsyncGenerator[AsyncConnection[Any], None]:
    """A read-model connection, once the projections reached `X-PMS-Min-Position`."""
    found = services(state)
    wanted = _min_position(request)
    async with found.pool.connection() as connection:
        if wanted:
            await wait_for_position(connection, wanted, found.settings.min_position_wait_seconds)
        yield connection


async def wait_for_position(
    connection: AsyncConnection[Any], wanted: int, wait_seconds: float
) -> None:
    """Poll the projection positions until they reach `wanted`, or raise ProjectionBehind."""
    groups = tuple(group.name for group in projection_groups())
    deadline = time.monotonic() + wait_seconds
    delay = 0.002
    while True:
        reached = await lowest_position(connection, groups)
        if reached >= wanted:
            return
        if time.monotonic() >= deadline:
            raise ProjectionBehind(wanted, reached)
        await asyncio.sleep(min(delay, max(0.0, deadline - time.monotonic())))
        delay = min(delay * 2, 0.05)


DEPENDENCIES = {
    "store": Provide(provide_store, sync_to_thread=False),
    "tokens": Provide(provide_tokens, sync_to_thread=False),
    "sessions": Provide(provide_sessions, sync_to_thread=False),
    "login_throttle": Provide(provide_login_throttle, sync_to_thread=False),
    "context": Provide(provide_context, sync_to_thread=False),
    "cache": Provide(provide_cache, sync_to_thread=False),
    "principal": Provide(provide_principal, sync_to_thread=False),
    "if_match": Provide(provide_if_match, sync_to_thread=False),
    "reader": Provide(provide_reader),
}
