"""Process managers: events in, idempotent commands out, position tracked.

- a payment captured or refunded, or credit applied to an order → the order's payment status
  follows (and a pending order that is now paid is confirmed);
- an order cancelled → the money its payments captured is refunded and what they only
  authorized is voided; a capture recorded after the cancellation is refunded the same way;
- units of a return resolved by refund arrive → their value is refunded.
Each reaction is idempotent (the refund id names the order, the payment and what it captured),
so running one twice after a crash changes nothing; the position is saved after the reaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any
from uuid import UUID

import psycopg
from eventsourcing.utils import get_topic

from application.context import CommandContext
from application.payments import release_cancelled_order, settle_order_payment_status
from application.returns import refund_return
from application.settings import Settings
from application.store import EventStore, UnitOfWork
from application.stripe import ProviderError, ProviderRefused, StripeGateway
from domain.errors import DomainError
from domain.orders import Order
from domain.payments import Payment
from domain.returns import Return

log = logging.getLogger(__name__)

NAME = "payments"
DDL = """
CREATE TABLE IF NOT EXISTS public.pms_process_positions (
    name text PRIMARY KEY,
    position bigint NOT NULL
);
"""
TOPICS = [
    get_topic(Payment.Captured),
    get_topic(Payment.Refunded),
    get_topic(Order.Cancelled),
    get_topic(Order.CreditApplied),
    get_topic(Return.ItemsReceived),
]
IDLE_SECONDS = 0.05


def react(store: EventStore, event: Any, position: int, stripe: StripeGateway | None) -> None:
    """Issue the commands an event calls for (idempotent)."""
    context = CommandContext(
        actor=f"system:process-manager:{NAME}",
        correlation_id=str(position),
        causation_id=str(position),
    )
    if isinstance(event, Payment.Captured | Payment.Refunded):
        payment = UnitOfWork(store.app).get(Payment, event.originator_id)
        settle_order_payment_status(store, context, payment.order_id)
        if isinstance(event, Payment.Captured):  # e.g. Stripe's news after a cancellation
            release_cancelled_order(store, context, payment.order_id, stripe)
    elif isinstance(event, Order.CreditApplied):
        settle_order_payment_status(store, context, UUID(str(event.originator_id)))
    elif isinstance(event, Order.Cancelled):
        release_cancelled_order(store, context, UUID(str(event.originator_id)), stripe)
    elif isinstance(event, Return.ItemsReceived):
        rma = UnitOfWork(store.app).get(Return, event.originator_id)
        if rma.resolution == "refund":  # a manual refund first leaves nothing due: skipped
            refund_return(store, context, rma.id, stripe)


def _load_position(database_url: str) -> int:
    with psycopg.connect(database_url, autocommit=True) as connection:
        connection.execute(DDL)
        row = connection.execute(
            "SELECT position FROM public.pms_process_positions WHERE name = %s", (NAME,)
        ).fetchone()
    return int(row[0]) if row else 0


def _save_position(database_url: str, position: int) -> None:
    with psycopg.connect(database_url, autocommit=True) as connection:
        connection.execute(
            "INSERT INTO public.pms_process_positions (name, position) VALUES (%s, %s)"
            " ON CONFLICT (name) DO UPDATE SET position = EXCLUDED.position",
            (NAME, position),
        )


def run_once(
    store: EventStore, database_url: str, position: int, stripe: StripeGateway | None
) -> int:
    """React to the next page of relevant events; return the new position."""
    page = store.app.recorder.select_notifications(
        start=position, limit=100, topics=TOPICS, inclusive_of_start=False
    )
    for notification in page:
        event = store.app.mapper.to_domain_event(notification)
        try:
            react(store, event, notification.id, stripe)
        except ProviderRefused as error:  # asking again would get the same answer
            log.error("process manager skipped position %d: %s", notification.id, error)
        except ProviderError:
            raise  # the provider is down or busy: try the same event again later
        except DomainError as error:
            log.error("process manager skipped position %d: %s", notification.id, error)
        position = notification.id
        _save_position(database_url, position)
    return position


async def run_process_managers(settings: Settings, store: EventStore, stop: asyncio.Event) -> None:
    """React to events until `stop`, polling the store (which never skips a late commit)."""
    stripe = (
        StripeGateway(settings.stripe_api_key, settings.stripe_api_base)
        if settings.stripe_api_key
        else None
    )
    position = await asyncio.to_thread(_load_position, settings.database_url)
    try:
        while not stop.is_set():
            try:
                new = await asyncio.to_thread(
                    run_once, store, settings.database_url, position, stripe
                )
            except ProviderError as error:
                log.warning("payment provider unavailable, retrying: %s", error)
                new = position
                await asyncio.sleep(1.0)
            if new == position:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), IDLE_SECONDS)
            position = new
    finally:
        if stripe is not None:
            stripe.close()
