"""Login and the current user."""

from __future__ import annotations

from uuid import UUID

import msgspec
from litestar import Controller, get, post
from litestar.exceptions import NotAuthorizedException, NotFoundException

from api.auth import Principal, TokenIssuer
from application.identity import authenticate, find_user
from application.store import EventStore


class Login(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """Credentials."""

    email: str
    password: str


class TokenPair(msgspec.Struct, rename="camel", frozen=True):
    """What a successful login returns."""

    access_token: str
    token_type: str
    expires_in: int


class Me(msgspec.Struct, frozen=True):
    """The signed-in user."""

    id: str
    email: str
    name: str
    role: str
    department: str | None


class AuthController(Controller):
    """Sign in and find out who you are."""

    path = "/auth"
    tags = ["auth"]

    @post("/login", opt={"exclude_from_auth": True}, status_code=200, sync_to_thread=True)
    def login(self, data: Login, store: EventStore, tokens: TokenIssuer) -> TokenPair:
        """Exchange email and password for an access token."""
        user = authenticate(store, data.email, data.password)
        if user is None:
            raise NotAuthorizedException("wrong email or password")
        return TokenPair(
            access_token=tokens.issue(user), token_type="Bearer", expires_in=tokens.ttl_seconds
        )

    @get("/me", sync_to_thread=True)
    def me(self, store: EventStore, principal: Principal) -> Me:
        """The signed-in user."""
        user = find_user(store, UUID(principal.subject_id))
        if user is None or not user.active:
            raise NotFoundException("the user no longer exists")
        return Me(
            id=str(user.id),
            email=user.email,
            name=user.name,
            role=user.role,
            department=user.department,
        )
