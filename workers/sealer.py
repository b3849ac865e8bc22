"""The sealer: signs each new range of final global positions (see application/audit.py)."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import psycopg

from application.audit import seal_next
from application.settings import Settings

log = logging.getLogger(__name__)

SEAL_INTERVAL_SECONDS = 1.0


async def run_sealer(settings: Settings, stop: asyncio.Event) -> None:
    """Seal new events about once a second until `stop`."""
    key = settings.audit_key.encode()

    def seal_all() -> int:
        sealed = 0
        with psycopg.connect(settings.database_url) as connection:
            while (seal := seal_next(connection, key)) is not None:
                sealed += seal.event_count
        return sealed

    while not stop.is_set():
        try:
            await asyncio.to_thread(seal_all)
        except psycopg.Error:
            log.exception("sealing failed; retrying")
        with contextlib.suppress(TimeoutError):  # the interval passed: seal again
            await asyncio.wait_for(stop.wait(), SEAL_INTERVAL_SECONDS)
