"""Hypothesis strategies for domain values, and helpers that replay an aggregate's events."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.domain import Aggregate, CanMutateAggregate
from hypothesis import strategies as st

from application.store import PmsApplication
from domain.values import CURRENCY_EXPONENTS, MAX_QUANTITY, Money

A = TypeVar("A", bound=Aggregate)

currencies: st.SearchStrategy[str] = st.sampled_from(sorted(CURRENCY_EXPONENTS))
unsupported_currencies: st.SearchStrategy[str] = st.text(max_size=4).filter(
    lambda code: code not in CURRENCY_EXPONENTS
)

# Small enough that random commands often meet the limits of the state they act on.
small_amounts = st.integers(min_value=0, max_value=100_000)


def money(
    currency: str | st.SearchStrategy[str] = currencies,
    amounts: st.SearchStrategy[int] = small_amounts,
) -> st.SearchStrategy[Money]:
    """Money in `currency` (a code or a strategy of codes) with an amount from `amounts`."""
    codes = st.just(currency) if isinstance(currency, str) else currency
    return st.builds(Money, amount=amounts, currency=codes)


# Whitespace that trimming removes; padding valid text with it must not change its meaning.
whitespace = st.text(alphabet=" \t\n\r", max_size=3)
blank_text = st.text(alphabet=" \t\n\r", max_size=4)
plain_text = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9 ,.'&-]{0,38}[A-Za-z0-9.]", fullmatch=True)


@st.composite
def padded(draw: st.DrawFn, text: st.SearchStrategy[str] = plain_text) -> str:
    """Text from `text` with whitespace around it."""
    return draw(whitespace) + draw(text) + draw(whitespace)


skus = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._\-/]{0,63}", fullmatch=True)
emails = st.builds(
    "{}@{}.{}".format,
    st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._%+-]{0,19}", fullmatch=True),
    st.from_regex(r"[A-Za-z0-9][A-Za-z0-9-]{0,14}", fullmatch=True),
    st.from_regex(r"[A-Za-z]{2,6}", fullmatch=True),
)

quantities = st.integers(min_value=0, max_value=MAX_QUANTITY)
positive_quantities = st.integers(min_value=1, max_value=MAX_QUANTITY)
out_of_range_quantities = st.one_of(
    st.integers(max_value=-1), st.integers(min_value=MAX_QUANTITY + 1)
)


def state_of(aggregate: Aggregate) -> dict[str, Any]:
    """The aggregate's attributes, leaving out events not yet saved."""
    return {name: value for name, value in vars(aggregate).items() if name != "_pending_events"}


def replay(aggregate_type: type[A], events: Iterable[CanMutateAggregate[UUID]]) -> A:
    """Fold `events`, oldest first, into a fresh `aggregate_type` as the store would."""
    aggregate: A | None = None
    for domain_event in events:
        aggregate = domain_event.mutate(aggregate)
    assert isinstance(aggregate, aggregate_type)
    return aggregate


def in_memory_application() -> PmsApplication:
    """The real application (with its Money transcoding) on the in-memory event store."""
    return PmsApplication(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})


def save_and_reload(app: PmsApplication, aggregate: A) -> A:
    """Save `aggregate`'s pending events and load it back from their stored JSON."""
    app.save(aggregate)
    reloaded: object = app.repository.get(aggregate.id)
    assert isinstance(reloaded, type(aggregate))
    return reloaded
