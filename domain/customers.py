"""Customers who place orders."""

from __future__ import annotations

from eventsourcing.domain import Aggregate, event

from domain.errors import IllegalTransition
from domain.values import required_text


class Customer(Aggregate):
    """A buyer, identified by a unique email."""

    class Registered(Aggregate.Created):
        email: str
        name: str
        phone: str
        address: str

    @event(Registered)
    def __init__(self, email: str, name: str, phone: str, address: str) -> None:
        self.email = email
        self.name = name
        self.phone = phone
        self.address = address
        self.active = True

    @classmethod
    def register(cls, *, email: str, name: str, phone: str = "", address: str = "") -> Customer:
        """A new customer; `email` must already be normalised and claimed."""
        return cls(
            email=email,
            name=required_text(name, "name"),
            phone=phone.strip(),
            address=address.strip(),
        )

    class DetailsChanged(Aggregate.Event):
        name: str
        phone: str
        address: str

        def apply(self, customer: Customer) -> None:
            customer.name = self.name
            customer.phone = self.phone
            customer.address = self.address

    class EmailChanged(Aggregate.Event):
        email: str

        def apply(self, customer: Customer) -> None:
            customer.email = self.email

    class Deactivated(Aggregate.Event):
        def apply(self, customer: Customer) -> None:
            customer.active = False

    def change_details(self, *, name: str, phone: str, address: str) -> None:
        """New name, phone or address; no event when nothing changes."""
        self._check_active()
        new = (required_text(name, "name"), phone.strip(), address.strip())
        if new != (self.name, self.phone, self.address):
            self.trigger_event(self.DetailsChanged, name=new[0], phone=new[1], address=new[2])

    def change_email(self, email: str) -> None:
        """Record a new email (already normalised and claimed)."""
        self._check_active()
        if email != self.email:
            self.trigger_event(self.EmailChanged, email=email)

    def deactivate(self) -> None:
        """The customer can no longer place orders; history stays."""
        if self.active:
            self.trigger_event(self.Deactivated)

    def check_can_order(self) -> None:
        """Refuse orders for deactivated customers."""
        self._check_active()

    def _check_active(self) -> None:
        if not self.active:
            raise IllegalTransition("the customer is deactivated")
