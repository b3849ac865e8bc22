"""Hardening of every answer and request: security headers, CORS, JSON size and shape limits."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request
from litestar.config.cors import CORSConfig
from litestar.datastructures import MutableScopeHeaders
from litestar.exceptions import ValidationException
from litestar.types import Message, Scope

from application.settings import Settings

# The API answers JSON only: nothing to frame, run or sniff. The docs pages under /schema load
# their scripts from a CDN, so they get the same headers without the content policy.
_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Strict-Transport-Security": "max-age=31536000; includeSubDomains",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}
_API_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
    "Cache-Control": "no-store",
}

# What browsers may send and read across origins.
REQUEST_HEADERS = [
    "Authorization",
    "Content-Type",
    "X-API-Key",
    "Idempotency-Key",
    "If-Match",
    "X-PMS-Min-Position",
    "X-Request-ID",
]
EXPOSED_HEADERS = [
    "Location",
    "X-PMS-Position",
    "X-Request-ID",
    "Retry-After",
    "RateLimit-Limit",
    "RateLimit-Remaining",
    "RateLimit-Reset",
    "RateLimit-Policy",
    "Idempotent-Replayed",
]


async def add_security_headers(message: Message, scope: Scope) -> None:
    """A `before_send` hook: every HTTP answer, unknown routes included, gets the headers."""
    if message["type"] != "http.response.start":
        return
    docs = str(scope.get("path", "")).startswith("/schema")
    headers = MutableScopeHeaders.from_message(message)
    for name, value in (_HEADERS if docs else _HEADERS | _API_HEADERS).items():
        headers[name] = value


def cors_config(settings: Settings) -> CORSConfig:
    """Cross-origin calls only from PMS_CORS_ORIGINS (none by default); no cookies are used."""
    return CORSConfig(
        allow_origins=list(settings.cors_origins),
        allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
        allow_headers=REQUEST_HEADERS,
        expose_headers=EXPOSED_HEADERS,
        allow_credentials=False,
        max_age=600,
    )


class JsonTooComplex(ValidationException):
    """A JSON body nests too deeply or carries an over-long string."""


class NotUtf8(ValidationException):
    """A JSON body whose text is not valid UTF-8 (JSON must be, RFC 8259)."""


class NulCharacter(ValidationException):
    """Text with a NUL character: PostgreSQL cannot store it, so no input may carry one."""


def _check_text(text: str, max_length: int) -> None:
    if len(text) > max_length:
        raise JsonTooComplex(f"a JSON string is longer than {max_length} characters")
    if "\x00" in text:
        raise NulCharacter("text must not contain NUL characters")


def check_json_shape(body: bytes, max_depth: int, max_string: int) -> None:
    """Refuse JSON nested deeper than `max_depth`, or with a string over `max_string` chars,
    with a NUL character or with bytes that are not UTF-8.

    Bodies that are not JSON are left alone: their route's decoder answers for them.
    """
    try:
        value = msgspec.json.decode(body)
    except RecursionError:
        raise JsonTooComplex(f"JSON nested deeper than {max_depth} levels") from None
    except UnicodeDecodeError:  # msgspec raises it, not DecodeError, for bad bytes in a string
        raise NotUtf8("the JSON body is not valid UTF-8") from None
    except msgspec.DecodeError:
        return
    stack: list[tuple[Any, int]] = [([value], 0)]
    while stack:
        node, depth = stack.pop()
        if depth > max_depth:
            raise JsonTooComplex(f"JSON nested deeper than {max_depth} levels")
        children = [*node.keys(), *node.values()] if isinstance(node, dict) else node
        for child in children:
            if isinstance(child, str):
                _check_text(child, max_string)
            elif isinstance(child, dict | list):
                stack.append((child, depth + 1))


class LimitedRequest(Request[Any, Any, Any]):
    """A request whose JSON body is checked for depth and string length once it is read."""

    async def body(self) -> bytes:
        """The body (size-limited by Litestar), refused when its JSON is too complex."""
        body = await super().body()
        state = self.scope.setdefault("state", {})
        if body and not state.get("pms_json_checked"):
            settings: Settings = self.app.state.services.settings
            check_json_shape(body, settings.max_json_depth, settings.max_json_string_length)
            state["pms_json_checked"] = True
        return body


async def refuse_nul_in_url(request: Request[Any, Any, Any]) -> None:
    """A `before_request` hook: no NUL character in the path or the query string."""
    query = request.scope.get("query_string", b"").lower()
    if "\x00" in request.scope["path"] or b"%00" in query or b"\x00" in query:
        raise NulCharacter("the URL must not contain NUL characters")
