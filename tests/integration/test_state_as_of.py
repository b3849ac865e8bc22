"""State as of a version or a time equals folding the stream's first events."""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Any, cast

import msgspec
from eventsourcing.domain import Aggregate
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from application.catalogue import CreateProduct, UpdateProduct, create_product, update_product
from application.context import CommandContext
from application.history import state_as_of, stream_events
from application.store import EventStore
from domain.values import Money

updates = st.lists(
    st.one_of(
        st.builds(lambda n: UpdateProduct(name=f"Name {n}"), st.integers(0, 99)),
        st.builds(lambda a: UpdateProduct(price=Money(a, "EUR")), st.integers(0, 10_000)),
        st.builds(
            lambda level, qty: UpdateProduct(reorder_level=level, reorder_quantity=qty),
            st.integers(0, 50),
            st.integers(0, 50),
        ),
    ),
    min_size=1,
    max_size=6,
)


def _fold(store: EventStore, stream_id: Any, version: int) -> dict[str, Any]:
    aggregate: Aggregate | None = None
    for event in store.app.events.get(stream_id, lte=version):
        aggregate = cast(Aggregate | None, cast(Any, event).mutate(aggregate))
    assert aggregate is not None
    state = {k.lstrip("_"): v for k, v in vars(aggregate).items() if k != "_pending_events"}
    return cast(dict[str, Any], msgspec.to_builtins(state))


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(changes=updates, data=st.data())
def test_state_at_a_version_or_time_is_the_fold_of_the_events_up_to_it(
    store: EventStore, changes: list[UpdateProduct], data: st.DataObject
) -> None:
    context = CommandContext.system("test")
    product = create_product(
        store,
        context,
        CreateProduct(sku=f"H-{secrets.token_hex(5)}", name="P", price=Money(1, "EUR")),
    ).value
    for change in changes:
        update_product(store, context, product.id, change)
    events = stream_events(store, product.id)
    last = events[-1].version
    version = data.draw(st.integers(1, last))
    as_of = state_as_of(store, product.id, version=version, at=None)
    assert as_of["version"] == version
    assert as_of["state"] == _fold(store, product.id, version)
    # At a time: the last version whose event is at or before it.
    chosen = data.draw(st.sampled_from(events))
    at = chosen.timestamp + timedelta(microseconds=data.draw(st.integers(0, 500)))
    expected = max(e.version for e in events if e.timestamp <= at)
    assert state_as_of(store, product.id, version=None, at=at)["version"] == expected
