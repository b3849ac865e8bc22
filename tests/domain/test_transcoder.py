"""The msgspec decoder gives what eventsourcing's JSON decoder gives, for any stored JSON."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.persistence import JSONTranscoder, TranscodingNotRegisteredError
from hypothesis import given
from hypothesis import strategies as st
from strategies import money

from application.store import PmsApplication
from application.transcoder import MsgspecJSONTranscoder
from domain.orders import OrderLine
from domain.values import Money


def _pair() -> tuple[JSONTranscoder, MsgspecJSONTranscoder]:
    app = PmsApplication({"PERSISTENCE_MODULE": "eventsourcing.popo"})
    library, ours = JSONTranscoder(), MsgspecJSONTranscoder()
    app.register_transcodings(library)
    app.register_transcodings(ours)
    return library, ours


LIBRARY, OURS = _pair()

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(),
    st.uuids(),
    st.datetimes(timezones=st.just(UTC)),
    st.decimals(allow_nan=False, allow_infinity=False),
    money(),
)
order_lines = st.builds(
    OrderLine,
    product_id=st.uuids(),
    sku=st.text(min_size=1, max_size=8),
    name=st.text(min_size=1, max_size=8),
    quantity=st.integers(min_value=1, max_value=1000),
    unit_price=money("EUR"),
)
values = st.recursive(
    st.one_of(scalars, order_lines),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=20,
)


@given(values)
def test_decodes_what_the_library_decodes(value: Any) -> None:
    data = LIBRARY.encode(value)
    assert OURS.decode(data) == LIBRARY.decode(data)


@given(st.dictionaries(st.sampled_from(["_type_", "_data_", "x"]), values, max_size=3))
def test_objects_shaped_like_transcoded_ones(value: dict[str, Any]) -> None:
    """Plain objects with `_type_` or `_data_` keys: revived where the library revives."""
    data = LIBRARY.encode(value)
    try:
        expected = LIBRARY.decode(data)
    except (TranscodingNotRegisteredError, TypeError) as error:
        with pytest.raises(type(error)):
            OURS.decode(data)
    else:
        assert OURS.decode(data) == expected


def test_transcoded_values_inside_transcoded_values() -> None:
    line = OrderLine(UUID(int=7), "SKU", "Thing", 2, Money(1250, "EUR"))
    data = LIBRARY.encode({"lines": [line], "at": datetime(2026, 1, 2, tzinfo=UTC)})
    decoded = OURS.decode(data)
    assert decoded == {"lines": [line], "at": datetime(2026, 1, 2, tzinfo=UTC)}
    assert type(decoded["lines"][0].unit_price) is Money


def test_unknown_type_name_is_the_library_error() -> None:
    with pytest.raises(TranscodingNotRegisteredError):
        OURS.decode(b'{"a":{"_type_":"nope","_data_":1}}')


def test_what_msgspec_refuses_is_decoded_as_before() -> None:
    """NaN and numbers beyond a double: json accepts them, so the library's answer stands."""
    decoded = OURS.decode(b'{"a":NaN,"b":1e400,"c":{"_type_":"decimal_str","_data_":"1.5"}}')
    assert math.isnan(decoded["a"])
    assert decoded["b"] == math.inf
    assert decoded["c"] == Decimal("1.5")
    with pytest.raises(json.JSONDecodeError):
        OURS.decode(b'{"a":')


@pytest.mark.parametrize("data", [b"1", b'"text"', b"null", b"[]", b"{}"])
def test_top_level_values(data: bytes) -> None:
    assert OURS.decode(data) == LIBRARY.decode(data)
