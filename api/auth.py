"""Authentication: JWT bearer tokens, the principal of a request, and permission guards."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

import jwt
from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult
from litestar.types import Guard

from application.permissions import Permission, allows
from application.settings import Settings
from domain.identity import User

ALGORITHM = "HS256"


@dataclass(frozen=True)
class Principal:
    """Who is calling: a user (or later an API key) with a role."""

    subject_id: str
    role: str
    kind: str = "user"
    token_id: str = ""

    @property
    def actor(self) -> str:
        """The actor recorded on events, e.g. `user:<id>`."""
        return f"{self.kind}:{self.subject_id}"


@dataclass(frozen=True)
class TokenIssuer:
    """Signs and checks access tokens."""

    secret: str
    issuer: str
    audience: str
    ttl_seconds: int

    @classmethod
    def from_settings(cls, settings: Settings) -> TokenIssuer:
        """The issuer configured by `settings`."""
        return cls(
            secret=settings.jwt_secret,
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            ttl_seconds=settings.access_token_ttl_seconds,
        )

    def issue(self, user: User) -> str:
        """A signed access token for `user`."""
        now = int(time.time())
        claims = {
            "sub": str(user.id),
            "role": user.role,
            "iss": self.issuer,
            "aud": self.audience,
            "iat": now,
            "nbf": now,
            "exp": now + self.ttl_seconds,
            "jti": uuid.uuid4().hex,
        }
        return jwt.encode(claims, self.secret, algorithm=ALGORITHM)

    def verify(self, token: str) -> Principal:
        """The principal of a valid token; NotAuthorizedException otherwise."""
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self.secret,
                algorithms=[ALGORITHM],
                audience=self.audience,
                issuer=self.issuer,
                options={"require": ["exp", "iat", "sub", "jti", "aud", "iss"]},
            )
        except jwt.ExpiredSignatureError:
            raise NotAuthorizedException("the access token has expired") from None
        except jwt.PyJWTError:
            raise NotAuthorizedException("invalid access token") from None
        return Principal(
            subject_id=str(claims["sub"]), role=str(claims.get("role", "")), token_id=claims["jti"]
        )


def bearer_token(connection: ASGIConnection[Any, Any, Any, Any]) -> str | None:
    """The token of an `Authorization: Bearer` header, if any."""
    header = connection.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


class TokenAuthenticationMiddleware(AbstractAuthenticationMiddleware):
    """Every route needs a valid bearer token unless it opts out with `exclude_from_auth`."""

    async def authenticate_request(
        self, connection: ASGIConnection[Any, Any, Any, Any]
    ) -> AuthenticationResult:
        """Resolve the principal from the request's credentials."""
        token = bearer_token(connection)
        if token is None:
            raise NotAuthorizedException("missing bearer token")
        issuer: TokenIssuer = connection.app.state.services.tokens
        principal = issuer.verify(token)
        return AuthenticationResult(user=principal, auth=token)


def requires(permission: Permission) -> Guard:
    """A guard that lets through principals whose role has `permission`."""

    def guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        principal = connection.user
        if not isinstance(principal, Principal):
            raise NotAuthorizedException("not authenticated")
        if not allows(principal.role, permission):
            raise PermissionDeniedException(f"the {principal.role} role may not {permission}")

    return guard
