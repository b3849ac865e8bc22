"""Rows as column arrays: the parameters of one set-based statement over `unnest(...)`.

Pass them as binary parameters (`%b::uuid[]`): psycopg quotes and escapes every element of a
text-format array in Python, several times slower than the binary format for large arrays."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any


def columns(rows: Iterable[tuple[Any, ...]]) -> tuple[list[Any], ...]:
    """One list per column of `rows` (all of the same length, at least one)."""
    return tuple(list(column) for column in zip(*rows, strict=True))


def unnest_of(names: Sequence[str], types: dict[str, str]) -> str:
    """`unnest(%b::type[], ...) AS d(name, ...)`: the columns `names`, typed by `types`."""
    arrays = ", ".join(f"%b::{types[name]}[]" for name in names)
    return f"unnest({arrays}) AS d({', '.join(names)})"
