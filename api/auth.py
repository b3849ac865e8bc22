"""Authentication: access and refresh tokens, sessions in Redis, API keys, permission guards."""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import anyio.to_thread
import jwt
import redis.asyncio as aioredis
from litestar.connection import ASGIConnection
from litestar.exceptions import (
    NotAuthorizedException,
    PermissionDeniedException,
    ServiceUnavailableException,
)
from litestar.handlers.base import BaseRouteHandler
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult
from redis.exceptions import RedisError

from application.api_keys import authenticate_api_key
from application.permissions import Permission, allows
from application.settings import Settings
from domain.api_keys import key_prefix
from domain.identity import User

if TYPE_CHECKING:
    from api.services import Services

ALGORITHM = "HS256"
API_KEY_HEADER = "x-api-key"
LAST_USED_KEY = "pms:api-keys:last-used"  # hash: key id -> unix time of its latest request
VERIFIED_TOKENS = 4096  # access tokens whose signature and claims a process remembers

log = logging.getLogger("pms.auth")


@dataclass(frozen=True)
class Principal:
    """Who is calling: a user (signed in) or an API key, with a role."""

    subject_id: str
    role: str
    kind: str = "user"  # or "apikey"
    token_id: str = ""  # jti of the access token
    session_id: str = ""  # the sign-in the access token belongs to
    expires_at: int = 0

    @property
    def actor(self) -> str:
        """The actor recorded on events: `user:<id>` or `apikey:<id>`."""
        return f"{self.kind}:{self.subject_id}"


@dataclass(frozen=True)
class RefreshClaims:
    """What a refresh token names: the user, the session (token family) and itself."""

    user_id: str
    session_id: str
    token_id: str


@dataclass(frozen=True)
class TokenIssuer:
    """Signs and checks access tokens and refresh tokens (distinct audiences)."""

    secret: str
    issuer: str
    audience: str
    ttl_seconds: int
    refresh_ttl_seconds: int = 14 * 24 * 3600
    # Access tokens already checked, by their exact text: a client sends the same token with
    # every request, and checking the signature and claims again is a large part of a small
    # request's work. Only the expiry can change; it is checked on every use.
    _verified: dict[str, Principal] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    @classmethod
    def from_settings(cls, settings: Settings) -> TokenIssuer:
        """The issuer configured by `settings`."""
        return cls(
            secret=settings.jwt_secret,
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            ttl_seconds=settings.access_token_ttl_seconds,
            refresh_ttl_seconds=settings.refresh_token_ttl_seconds,
        )

    @property
    def refresh_audience(self) -> str:
        """Refresh tokens are not access tokens, and the other way round."""
        return f"{self.audience}:refresh"

    def _sign(self, audience: str, ttl: int, **claims: Any) -> str:
        now = int(time.time())
        body = {"iss": self.issuer, "aud": audience, "iat": now, "nbf": now, "exp": now + ttl}
        return jwt.encode({**body, **claims}, self.secret, algorithm=ALGORITHM)

    def issue(self, user: User, session_id: str = "") -> str:
        """A signed access token for `user` in session `session_id`."""
        return self._sign(
            self.audience,
            self.ttl_seconds,
            sub=str(user.id),
            role=user.role,
            sid=session_id,
            jti=uuid.uuid4().hex,
        )

    def issue_refresh(self, claims: RefreshClaims) -> str:
        """A signed refresh token."""
        return self._sign(
            self.refresh_audience,
            self.refresh_ttl_seconds,
            sub=claims.user_id,
            sid=claims.session_id,
            jti=claims.token_id,
        )

    def _decode(self, token: str, audience: str, what: str) -> dict[str, Any]:
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self.secret,
                algorithms=[ALGORITHM],
                audience=audience,
                issuer=self.issuer,
                options={"require": ["exp", "iat", "sub", "jti", "aud", "iss"]},
            )
        except jwt.ExpiredSignatureError:
            raise NotAuthorizedException(f"the {what} has expired") from None
        except jwt.PyJWTError:
            raise NotAuthorizedException(f"invalid {what}") from None
        return claims

    def verify(self, token: str) -> Principal:
        """The principal of a valid access token; NotAuthorizedException otherwise."""
        known = self._verified.pop(token, None)
        if known is not None and time.time() < known.expires_at:
            self._verified[token] = known  # now the most recently used
            return known
        claims = self._decode(token, self.audience, "access token")
        principal = Principal(
            subject_id=str(claims["sub"]),
            role=str(claims.get("role", "")),
            token_id=str(claims["jti"]),
            session_id=str(claims.get("sid", "")),
            expires_at=int(claims["exp"]),
        )
        if len(self._verified) >= VERIFIED_TOKENS:
            del self._verified[next(iter(self._verified))]  # the least recently used
        self._verified[token] = principal
        return principal

    def verify_refresh(self, token: str) -> RefreshClaims:
        """The claims of a validly signed, unexpired refresh token."""
        claims = self._decode(token, self.refresh_audience, "refresh token")
        return RefreshClaims(
            user_id=str(claims["sub"]),
            session_id=str(claims.get("sid", "")),
            token_id=claims["jti"],
        )


@dataclass(frozen=True)
class IssuedTokens:
    """An access token and the refresh token that replaces it."""

    access_token: str
    refresh_token: str
    expires_in: int


# One session = one refresh-token family. Rotation is a compare-and-set on the family's
# current token id; presenting any other (older) token of the family revokes the family.
_ROTATE = """
local current = redis.call('HGET', KEYS[1], 'current')
if not current then return 'unknown' end
if redis.call('HGET', KEYS[1], 'revoked') == '1' then return 'revoked' end
if current ~= ARGV[1] then
  redis.call('HSET', KEYS[1], 'revoked', '1')
  return 'reused'
end
redis.call('HSET', KEYS[1], 'current', ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[3])
return 'rotated'
"""


# Redis 6 has no EXPIRE NX: keep the family's own expiry, or give it one.
_REVOKE = """
redis.call('HSET', KEYS[1], 'revoked', '1')
if redis.call('TTL', KEYS[1]) < 0 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
"""


class Sessions:
    """Sign-in sessions in Redis: refresh-token families and the access-token deny-list."""

    def __init__(self, redis: aioredis.Redis, tokens: TokenIssuer) -> None:
        self._redis = redis
        self._tokens = tokens

    @staticmethod
    def _family(session_id: str) -> str:
        return f"pms:auth:session:{session_id}"

    @staticmethod
    def _user_sessions(user_id: str) -> str:
        return f"pms:auth:user-sessions:{user_id}"

    @staticmethod
    def _denied(token_id: str) -> str:
        return f"pms:auth:denied:{token_id}"

    def _pair(self, user: User, claims: RefreshClaims) -> IssuedTokens:
        return IssuedTokens(
            access_token=self._tokens.issue(user, claims.session_id),
            refresh_token=self._tokens.issue_refresh(claims),
            expires_in=self._tokens.ttl_seconds,
        )

    async def open(self, user: User) -> IssuedTokens:
        """Start a session for a user who just proved who they are."""
        claims = RefreshClaims(str(user.id), uuid.uuid4().hex, uuid.uuid4().hex)
        ttl = self._tokens.refresh_ttl_seconds
        family = self._family(claims.session_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(family, mapping={"user": claims.user_id, "current": claims.token_id})
            pipe.expire(family, ttl)
            pipe.sadd(self._user_sessions(claims.user_id), claims.session_id)
            pipe.expire(self._user_sessions(claims.user_id), ttl)
            await pipe.execute()
        return self._pair(user, claims)

    async def refresh(
        self, refresh_token: str, load_user: Callable[[uuid.UUID], Awaitable[User | None]]
    ) -> IssuedTokens:
        """Rotate: a new pair for the current refresh token; an old one revokes the session."""
        old = self._tokens.verify_refresh(refresh_token)
        new = RefreshClaims(old.user_id, old.session_id, uuid.uuid4().hex)
        outcome = await self._redis.eval(
            _ROTATE,
            1,
            self._family(old.session_id),
            old.token_id,
            new.token_id,
            str(self._tokens.refresh_ttl_seconds),
        )
        outcome = _text(outcome)
        if outcome == "reused":
            log_security_event("refresh_token_reused", user=old.user_id, session=old.session_id)
            raise NotAuthorizedException("refresh token already used: the session is revoked")
        if outcome != "rotated":
            raise NotAuthorizedException("the session has ended; sign in again")
        user = await load_user(uuid.UUID(old.user_id))
        if user is None or not user.active:
            await self.revoke_session(old.session_id)
            raise NotAuthorizedException("the user can no longer sign in")
        return self._pair(user, new)

    async def logout(self, principal: Principal, refresh_token: str) -> None:
        """End the caller's session, its refresh token's session, and this access token."""
        sessions = {principal.session_id}
        try:
            claims = self._tokens.verify_refresh(refresh_token)
        except NotAuthorizedException:
            claims = None
        if claims is not None and claims.user_id == principal.subject_id:
            sessions.add(claims.session_id)
        remaining = max(1, principal.expires_at - int(time.time()))
        await self._redis.set(self._denied(principal.token_id), "1", ex=remaining)
        for session_id in sessions - {""}:
            await self.revoke_session(session_id)

    async def revoke_session(self, session_id: str) -> None:
        """Refresh tokens and access tokens of this session stop working."""
        ttl = str(self._tokens.refresh_ttl_seconds)
        await self._redis.eval(_REVOKE, 1, self._family(session_id), ttl)

    async def revoke_user(self, user_id: str) -> None:
        """End every session of a user (deactivated, demoted, new password)."""
        key = self._user_sessions(user_id)
        for session_id in await self._redis.smembers(key):
            await self.revoke_session(_text(session_id))
            await self._redis.srem(key, session_id)  # not DEL: a sign-in may be arriving now

    async def is_revoked(self, principal: Principal) -> bool:
        """Whether the access token was logged out or its session revoked."""
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.exists(self._denied(principal.token_id))
            pipe.hget(self._family(principal.session_id or "-"), "revoked")
            denied, revoked = await pipe.execute()
        return bool(denied) or revoked == b"1"


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def bearer_token(connection: ASGIConnection[Any, Any, Any, Any]) -> str | None:
    """The token of an `Authorization: Bearer` header, if any."""
    header = connection.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


async def authenticate(services: Services, *, bearer: str | None, api_key: str | None) -> Principal:
    """The principal behind a bearer token or an API key; NotAuthorizedException otherwise."""
    if bearer and api_key:
        raise NotAuthorizedException("send a bearer token or an API key, not both")
    if api_key:
        return await _api_key_principal(services, api_key)
    if not bearer:
        raise NotAuthorizedException("missing bearer token or API key")
    principal = services.tokens.verify(bearer)
    try:
        revoked = await Sessions(services.redis, services.tokens).is_revoked(principal)
    except RedisError:  # fail closed: a revoked token must not pass while Redis is away
        raise ServiceUnavailableException(
            "cannot check the token right now", headers={"Retry-After": "1"}
        ) from None
    if revoked:
        raise NotAuthorizedException("the access token has been revoked")
    return principal


async def _api_key_principal(services: Services, key: str) -> Principal:
    found = None
    if key_prefix(key) is not None:
        found = await anyio.to_thread.run_sync(authenticate_api_key, services.store, key)
    if found is None:
        raise NotAuthorizedException("invalid API key")
    # Last use lives in Redis, not in the event store: no event per request.
    await services.redis.hset(LAST_USED_KEY, str(found.id), str(int(time.time())))
    return Principal(subject_id=str(found.id), role=found.role, kind="apikey")


async def api_keys_last_used(redis: aioredis.Redis, key_ids: list[str]) -> dict[str, int]:
    """Unix time of each key's latest request, for the keys that were ever used."""
    if not key_ids:
        return {}
    times = await redis.hmget(LAST_USED_KEY, key_ids)
    return {key_id: int(at) for key_id, at in zip(key_ids, times, strict=True) if at}


class TokenAuthenticationMiddleware(AbstractAuthenticationMiddleware):
    """Every route needs a bearer token or an API key unless it opts out (`exclude_from_auth`)."""

    async def authenticate_request(
        self, connection: ASGIConnection[Any, Any, Any, Any]
    ) -> AuthenticationResult:
        """Resolve the principal from the request's credentials."""
        try:
            principal = await authenticate(
                connection.app.state.services,
                bearer=bearer_token(connection),
                api_key=connection.headers.get(API_KEY_HEADER),
            )
        except NotAuthorizedException as exc:
            log_security_event("authentication_failed", connection, logging.INFO, reason=exc.detail)
            raise
        return AuthenticationResult(user=principal, auth=None)


@dataclass(frozen=True)
class Requires:
    """A guard: the caller's role must have `permission` (None: any signed-in user, no key)."""

    permission: Permission | None

    async def __call__(
        self, connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler
    ) -> None:
        """Let the caller through or raise 401/403."""
        principal = connection.scope.get("user")
        if not isinstance(principal, Principal):
            raise NotAuthorizedException("not authenticated")
        if self.permission is None:
            if principal.kind == "user":
                return
            detail = "an API key cannot use the routes of a user account"
        elif allows(principal.role, self.permission):
            return
        else:
            detail = f"the {principal.role} role may not {self.permission}"
        log_security_event(
            "permission_denied",
            connection,
            actor=principal.actor,
            role=principal.role,
            permission=str(self.permission or "user account"),
        )
        raise PermissionDeniedException(detail)


def requires(permission: Permission) -> Requires:
    """A guard that lets through principals whose role has `permission`."""
    return Requires(permission)


def requires_user() -> Requires:
    """A guard for the caller's own account: any signed-in user, but not an API key."""
    return Requires(None)


def declared_access(handler: BaseRouteHandler) -> list[Requires]:
    """The permission guards of a route handler, wherever they were declared."""
    guards = (getattr(guard, "func", guard) for guard in handler.resolve_guards())
    return [guard for guard in guards if isinstance(guard, Requires)]


async def route_declares_access(
    connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
) -> None:
    """App-wide guard that fails closed: a protected API route must say who may call it."""
    path = str(connection.scope.get("path", ""))
    if handler.opt.get("exclude_from_auth") or not path.startswith("/api/"):
        return
    if connection.scope.get("method") == "OPTIONS" or declared_access(handler):
        return
    log_security_event("permission_denied", connection, reason="the route declares no permission")
    raise PermissionDeniedException("this route declares no permission")


def log_security_event(
    name: str,
    connection: ASGIConnection[Any, Any, Any, Any] | None = None,
    level: int = logging.WARNING,
    **fields: Any,
) -> None:
    """One JSON line per security event, with the request id; never passwords or tokens."""
    scope: Any = connection.scope if connection is not None else {}
    where = {"method": scope.get("method"), "path": scope.get("path")} if scope else {}
    request_id = scope.get("state", {}).get("request_id", "") if scope else ""
    log.log(level, json.dumps({"event": name, "requestId": request_id, **where, **fields}))


async def authenticate_token(services: Services, token: str) -> Principal:
    """A credential given as one string (the websocket's `?token=`): API key or access token."""
    if key_prefix(token) is not None:
        return await authenticate(services, bearer=None, api_key=token)
    return await authenticate(services, bearer=token, api_key=None)
