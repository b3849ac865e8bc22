"""Commands on customers."""

from __future__ import annotations

from uuid import UUID

import msgspec

from application.context import CommandContext
from application.store import EventStore, Outcome, UnitOfWork
from application.uniqueness import claim_key, move_key
from domain.customers import Customer
from domain.identity import normalise_email

CUSTOMER_EMAIL_KEY = "customer-email"


class CreateCustomer(msgspec.Struct, rename="camel", forbid_unknown_fields=True, frozen=True):
    """A new customer."""

    email: str
    name: str
    phone: str = ""
    address: str = ""


class UpdateCustomer(msgspec.Struct, rename="camel", forbid_unknown_fields=True, frozen=True):
    """Change some fields; absent ones stay."""

    email: str | msgspec.UnsetType = msgspec.UNSET
    name: str | msgspec.UnsetType = msgspec.UNSET
    phone: str | msgspec.UnsetType = msgspec.UNSET
    address: str | msgspec.UnsetType = msgspec.UNSET


def create_customer(
    store: EventStore, context: CommandContext, command: CreateCustomer
) -> Outcome[Customer]:
    """Register a customer with a unique email."""

    def decide(unit: UnitOfWork) -> Customer:
        email = normalise_email(command.email)
        customer = Customer.register(
            email=email, name=command.name, phone=command.phone, address=command.address
        )
        claim_key(unit, CUSTOMER_EMAIL_KEY, email, customer.id)
        unit.add(customer)
        return customer

    return store.execute(context, decide)


def update_customer(
    store: EventStore,
    context: CommandContext,
    customer_id: UUID,
    command: UpdateCustomer,
    *,
    if_match: int | None = None,
) -> Outcome[Customer]:
    """Partial update of a customer."""

    def decide(unit: UnitOfWork) -> Customer:
        customer = unit.get(Customer, customer_id, version=if_match)
        c = command
        if c.email is not msgspec.UNSET:
            email = normalise_email(c.email)
            if email != customer.email:
                move_key(unit, CUSTOMER_EMAIL_KEY, customer.email, email, customer.id)
                customer.change_email(email)
        customer.change_details(
            name=customer.name if c.name is msgspec.UNSET else c.name,
            phone=customer.phone if c.phone is msgspec.UNSET else c.phone,
            address=customer.address if c.address is msgspec.UNSET else c.address,
        )
        return customer

    return store.execute(context, decide)


def deactivate_customer(
    store: EventStore, context: CommandContext, customer_id: UUID, *, if_match: int | None = None
) -> Outcome[Customer]:
    """Stop a customer from ordering (their history stays)."""

    def decide(unit: UnitOfWork) -> Customer:
        customer = unit.get(Customer, customer_id, version=if_match)
        customer.deactivate()
        return customer

    return store.execute(context, decide)
