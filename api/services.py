"""The clients and pools one API process holds, built in the app's lifespan."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import nats
import redis.asyncio as aioredis
from nats.aio.client import Client as NatsClient
from psycopg_pool import AsyncConnectionPool

from api.auth import TokenIssuer
from api.metrics import Metrics
from api.ws_hub import Hub
from application.settings import Settings
from application.store import EventStore
from projections.registry import projection_groups
from projections.schemas import reader_options


@dataclass
class Services:
    """Everything a request handler may need, owned by the application's lifespan."""

    settings: Settings
    store: EventStore
    pool: AsyncConnectionPool
    nats: NatsClient
    redis: aioredis.Redis
    tokens: TokenIssuer
    hub: Hub
    metrics: Metrics = field(default_factory=Metrics)
    started_at: float = field(default_factory=time.monotonic)

    @classmethod
    async def start(cls, settings: Settings) -> Services:
        """Connect to PostgreSQL, NATS and Redis."""
        settings.require_servers()
        store = EventStore.connect(settings)
        metrics = Metrics()
        recorder = store.app.recorder
        setattr(recorder, "insert_events", metrics.timed_append(recorder.insert_events))  # noqa: B010
        pool = AsyncConnectionPool(
            settings.database_url,
            min_size=2,
            max_size=settings.db_pool_size,
            # Read models are found through search_path (see projections/schemas.py).
            kwargs={"autocommit": True, **reader_options(projection_groups())},
            open=False,
        )
        await pool.open(wait=True, timeout=15)
        client = await nats.connect(
            settings.nats_url, name="pms-api", max_reconnect_attempts=-1, reconnect_time_wait=0.5
        )
        hub = Hub(client)
        await hub.start()
        return cls(
            settings=settings,
            store=store,
            pool=pool,
            nats=client,
            redis=aioredis.Redis.from_url(settings.redis_url, socket_timeout=2),
            tokens=TokenIssuer.from_settings(settings),
            hub=hub,
            metrics=metrics,
        )

    async def stop(self) -> None:
        """Close everything, most dependent first."""
        await self.hub.stop()
        await self.nats.close()
        await self.redis.aclose()
        await self.pool.close()
        self.store.close()
