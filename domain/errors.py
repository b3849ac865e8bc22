"""Domain errors: raised by aggregates before anything changes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class DomainError(Exception):
    """Base of every error a business rule raises."""

    code = "domain-error"

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra


class InvalidValue(DomainError):
    """A value breaks a rule of its type (negative quantity, unknown currency, ...)."""

    code = "invalid-value"

    def __init__(self, field_name: str, detail: str) -> None:
        super().__init__(detail)
        self.field_name = field_name


class NotFound(DomainError):
    """The named aggregate does not exist."""

    code = "not-found"


class Conflict(DomainError):
    """The command contradicts the current state (illegal transition, duplicate key, ...)."""

    code = "conflict"


class IllegalTransition(Conflict):
    """The aggregate's status does not allow this command."""

    code = "illegal-transition"


class DuplicateKey(Conflict):
    """A natural key (SKU, email, code) is already taken."""

    code = "duplicate-key"


@dataclass(frozen=True)
class Shortage:
    """One line that cannot be satisfied from available stock."""

    product_id: str
    location_id: str
    requested: int
    available: int


class InsufficientStock(Conflict):
    """Stock would go negative."""

    code = "insufficient-stock"

    def __init__(self, detail: str, shortages: list[Shortage] | None = None) -> None:
        super().__init__(detail)
        self.shortages: list[Shortage] = shortages or []
