"""Sign in, refresh, sign out, sign up, and one's own account."""

from __future__ import annotations

from functools import partial
from uuid import UUID

import msgspec
from anyio.to_thread import run_sync
from litestar import Controller, Response, get, post
from litestar.exceptions import NotFoundException

from api.auth import IssuedTokens, Principal, Sessions, requires_user
from api.ratelimit import LoginThrottle
from api.responses import created, done
from application.context import CommandContext
from application.identity import (
    ChangePassword,
    RegisterUser,
    authenticate,
    change_password,
    find_user,
    register_user,
)
from application.store import EventStore
from domain.identity import User

# Anyone may call these; they are rate limited per client address as the "auth" group.
PUBLIC = {"exclude_from_auth": True, "rate_limit": "auth"}


class Login(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """Credentials."""

    email: str
    password: str


class RefreshToken(msgspec.Struct, rename="camel", forbid_unknown_fields=True, frozen=True):
    """A refresh token, to rotate or to revoke."""

    refresh_token: str


class TokenPair(msgspec.Struct, rename="camel", frozen=True):
    """An access token and the refresh token that gets the next one."""

    access_token: str
    refresh_token: str
    token_type: str
    expires_in: int


class Me(msgspec.Struct, frozen=True):
    """The signed-in user."""

    id: str
    email: str
    name: str
    role: str
    department: str | None


def token_pair(tokens: IssuedTokens) -> TokenPair:
    """The wire shape of a new pair of tokens."""
    return TokenPair(
        access_token=tokens.access_token,
        refresh_token=tokens.refresh_token,
        token_type="Bearer",
        expires_in=tokens.expires_in,
    )


def me_view(user: User) -> Me:
    """The wire shape of a user's own account."""
    return Me(
        id=str(user.id),
        email=user.email,
        name=user.name,
        role=user.role,
        department=user.department,
    )


class AuthController(Controller):
    """Tokens and one's own account."""

    path = "/auth"
    tags = ["auth"]

    @post("/login", opt=PUBLIC, status_code=200, security=[])
    async def login(
        self, data: Login, store: EventStore, sessions: Sessions, login_throttle: LoginThrottle
    ) -> TokenPair:
        """Exchange email and password for a token pair (back-off after failures)."""
        check = partial(run_sync, authenticate, store, data.email, data.password)
        user = await login_throttle.attempt(data.email, check)
        return token_pair(await sessions.open(user))

    @post("/refresh", opt=PUBLIC, status_code=200, security=[])
    async def refresh(self, data: RefreshToken, store: EventStore, sessions: Sessions) -> TokenPair:
        """A new pair; the refresh token used stops working, and reusing it ends the session."""

        async def load(user_id: UUID) -> User | None:
            return await run_sync(find_user, store, user_id)

        return token_pair(await sessions.refresh(data.refresh_token, load))

    @post("/logout", guards=[requires_user()], status_code=204)
    async def logout(self, data: RefreshToken, principal: Principal, sessions: Sessions) -> None:
        """Revoke this access token and the session of the refresh token."""
        await sessions.logout(principal, data.refresh_token)

    @post("/register", opt=PUBLIC, sync_to_thread=True, security=[])
    def register(
        self, data: RegisterUser, store: EventStore, context: CommandContext
    ) -> Response[Me]:
        """Sign up as a viewer, while signup is enabled in the company settings."""
        outcome = register_user(store, context, data)
        user = outcome.value
        return created(me_view(user), outcome.position, f"/api/v1/users/{user.id}")

    @get("/me", guards=[requires_user()], sync_to_thread=True)
    def me(self, store: EventStore, principal: Principal) -> Me:
        """The signed-in user."""
        user = find_user(store, UUID(principal.subject_id))
        if user is None or not user.active:
            raise NotFoundException("the user no longer exists")
        return me_view(user)

    @post("/password", guards=[requires_user()], status_code=200)
    async def change_password(
        self,
        data: ChangePassword,
        store: EventStore,
        context: CommandContext,
        principal: Principal,
        sessions: Sessions,
    ) -> Response[TokenPair]:
        """Replace one's password: every session ends, and a new pair is issued."""
        command = partial(change_password, store, context, UUID(principal.subject_id), data)
        outcome = await run_sync(command)
        await sessions.revoke_user(principal.subject_id)
        return done(token_pair(await sessions.open(outcome.value)), outcome.position)
