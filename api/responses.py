"""Command answers: status, Location and the X-PMS-Position header."""

from __future__ import annotations

from typing import TypeVar

from litestar import Response

T = TypeVar("T")

POSITION_HEADER = "X-PMS-Position"


def created(body: T, position: int, location: str) -> Response[T]:
    """201 with the new resource, where it lives, and the store position of the command."""
    return Response(
        body, status_code=201, headers={POSITION_HEADER: str(position), "Location": location}
    )


def done(body: T, position: int) -> Response[T]:
    """200 with the changed resource and the store position of the command."""
    return Response(body, status_code=200, headers={POSITION_HEADER: str(position)})
