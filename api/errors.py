"""The one place where errors become HTTP answers: RFC 9457 problem+json."""

from __future__ import annotations

import logging
from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR

from application.store import ConcurrencyConflict
from application.stripe import InvalidSignature, ProviderError
from domain.errors import DomainError, InsufficientStock, InvalidValue, NotFound
from domain.identity import NotPermitted

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
_RESERVED = frozenset({"type", "title", "status", "detail", "instance"})


class ProjectionBehind(Exception):
    """The read model has not reached the position the client asked for in time."""

    def __init__(self, wanted: int, reached: int) -> None:
        super().__init__(f"read model at position {reached}, {wanted} requested")
        self.wanted = wanted
        self.reached = reached


def problem(
    status: int,
    code: str,
    title: str,
    detail: str,
    *,
    headers: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> Response[dict[str, Any]]:
    """A problem+json response with a stable `type` per error class."""
    body: dict[str, Any] = {
        "type": f"/problems/{code}",
        "title": title,
        "status": status,
        "detail": detail,
        **{k: v for k, v in (extra or {}).items() if k not in _RESERVED},
    }
    return Response(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _domain_error(_: Request[Any, Any, Any], exc: DomainError) -> Response[dict[str, Any]]:
    if isinstance(exc, InvalidValue):
        return problem(
            422,
            exc.code,
            "Invalid value",
            exc.detail,
            extra={"errors": [{"field": exc.field_name, "message": exc.detail}]},
        )
    if isinstance(exc, NotFound):
        return problem(404, exc.code, "Not found", exc.detail)
    if isinstance(exc, InvalidSignature):
        return problem(400, exc.code, "Invalid signature", exc.detail)
    if isinstance(exc, ProviderError):
        return problem(502, exc.code, "Payment provider error", exc.detail)
    if isinstance(exc, NotPermitted):
        return problem(403, exc.code, "Forbidden", exc.detail)
    if isinstance(exc, ConcurrencyConflict):
        # Transient: the same request may well succeed in a moment (and is not remembered
        # under its Idempotency-Key, see api/idempotency.py).
        return problem(409, exc.code, "Conflict", exc.detail, headers={"Retry-After": "1"})
    if isinstance(exc, InsufficientStock):
        return problem(
            409,
            exc.code,
            "Insufficient stock",
            exc.detail,
            extra={
                "shortages": [
                    {
                        "productId": s.product_id,
                        "locationId": s.location_id,
                        "requested": s.requested,
                        "available": s.available,
                    }
                    for s in exc.shortages
                ]
            },
        )
    extra = {_camel(k): v for k, v in exc.extra.items() if isinstance(v, str | int)}
    return problem(409, exc.code, "Conflict", exc.detail, extra=extra)


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


_HTTP_CODES = {
    400: ("bad-request", "Bad request"),
    401: ("unauthenticated", "Unauthenticated"),
    403: ("forbidden", "Forbidden"),
    404: ("not-found", "Not found"),
    405: ("method-not-allowed", "Method not allowed"),
    413: ("payload-too-large", "Request body too large"),
    429: ("rate-limited", "Too many requests"),
    503: ("service-unavailable", "Service unavailable"),
}


def _validation_errors(extra: Any) -> list[dict[str, str]]:
    errors = []
    for item in extra if isinstance(extra, list) else []:
        if isinstance(item, dict):
            field = str(item.get("key") or item.get("source") or "body")
            errors.append({"field": field, "message": str(item.get("message", ""))})
    return errors


def _http_error(_: Request[Any, Any, Any], exc: HTTPException) -> Response[dict[str, Any]]:
    if isinstance(exc, ValidationException):
        return problem(
            400,
            "validation-error",
            "Invalid request",
            exc.detail,
            extra={"errors": _validation_errors(exc.extra)},
        )
    code, title = _HTTP_CODES.get(exc.status_code, ("http-error", "Error"))
    headers = dict(exc.headers or {})
    return problem(exc.status_code, code, title, exc.detail, headers=headers)


def _behind(_: Request[Any, Any, Any], exc: ProjectionBehind) -> Response[dict[str, Any]]:
    return problem(
        503,
        "projection-behind",
        "Read model not fresh enough yet",
        str(exc),
        headers={"Retry-After": "1"},
        extra={"wantedPosition": exc.wanted, "reachedPosition": exc.reached},
    )


def _unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem(
        HTTP_500_INTERNAL_SERVER_ERROR,
        "internal-error",
        "Internal error",
        "an unexpected error occurred; the request id identifies it in the logs",
    )


EXCEPTION_HANDLERS: dict[type[Exception] | int, Any] = {
    DomainError: _domain_error,
    ProjectionBehind: _behind,
    HTTPException: _http_error,
    Exception: _unexpected,
}
