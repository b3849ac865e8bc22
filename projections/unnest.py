"""Rows as column arrays: the parameters of one set-based statement over `unnest(...)`."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def columns(rows: Iterable[tuple[Any, ...]]) -> tuple[list[Any], ...]:
    """One list per column of `rows` (all of the same length, at least one)."""
    return tuple(list(column) for column in zip(*rows, strict=True))
