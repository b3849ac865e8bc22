"""Answers of heavy read-model queries, cached in Redis under the position they were read at.

A key names the query, its parameters and the projection position of the snapshot that
answered it. A request reads the position first (in its own snapshot) and only takes a cached
answer made at exactly that position: never older than what the client waited for with
X-PMS-Min-Position, never different from what the query would say now. So the cache changes
nothing but speed; entries for positions that have passed simply expire.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

import msgspec
import redis.asyncio as aioredis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

T = TypeVar("T")

TTL_SECONDS = 600
PREFIX = "pms:answers"


def answer_key(kind: str, position: int, params: Mapping[str, Any]) -> str:
    """The Redis key of `kind`'s answer for `params` at `position`."""
    digest = hashlib.sha256(msgspec.json.encode(dict(sorted(params.items())))).hexdigest()[:32]
    return f"{PREFIX}:{kind}:{position}:{digest}"


class AnswerCache:
    """Get-or-compute in Redis; when Redis is unavailable every answer is computed."""

    def __init__(self, redis: aioredis.Redis, ttl_seconds: int = TTL_SECONDS) -> None:
        self.redis = redis
        self.ttl_seconds = ttl_seconds

    async def answer(
        self,
        kind: str,
        position: int,
        params: Mapping[str, Any],
        answer_type: type[T],
        compute: Callable[[], Awaitable[T]],
    ) -> T:
        """The cached answer at `position`, or `compute()`'s (then cached)."""
        key = answer_key(kind, position, params)
        try:
            cached = await self.redis.get(key)
        except RedisError as exc:
            log.warning("answer cache unavailable: %s", exc)
            return await compute()
        if cached is not None:
            return msgspec.json.decode(cached, type=answer_type)
        value = await compute()
        try:
            await self.redis.set(key, msgspec.json.encode(value), ex=self.ttl_seconds)
        except RedisError as exc:
            log.warning("answer cache unavailable: %s", exc)
        return value
