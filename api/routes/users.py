"""User administration (admin): create, list, change role, deactivate."""

from __future__ import annotations

from functools import partial
from typing import Any
from uuid import UUID

from anyio.to_thread import run_sync
from litestar import Controller, Response, delete, get, patch, post
from litestar.exceptions import NotFoundException
from psycopg import AsyncConnection

from api.auth import Sessions, requires
from api.responses import created, done
from application.context import CommandContext
from application.identity import (
    ChangeRole,
    CreateUser,
    change_user_role,
    create_user,
    deactivate_user,
)
from application.permissions import Permission
from application.store import EventStore
from domain.identity import Role, User
from projections.paging import parse_page
from projections.user_queries import USER_SORTS, UserPage, UserView, get_user, list_users


def user_view(user: User) -> UserView:
    """The wire shape of a user, from the aggregate a command returned."""
    return UserView(
        id=user.id,
        email=user.email,
        name=user.name,
        role=user.role,
        department=user.department,
        active=user.active,
        version=user.version,
        created_at=user.created_on,
        updated_at=user.modified_on,
    )


class UserController(Controller):
    """Users and their roles; changing either ends the user's sessions at once."""

    path = "/users"
    tags = ["identity"]
    guards = [requires(Permission.USERS_ADMIN)]

    @post(sync_to_thread=True)
    def create(
        self, data: CreateUser, store: EventStore, context: CommandContext
    ) -> Response[UserView]:
        """Create a user with a role (email unique)."""
        outcome = create_user(store, context, data)
        user = outcome.value
        return created(user_view(user), outcome.position, f"/api/v1/users/{user.id}")

    @get()
    async def index(
        self,
        reader: AsyncConnection[Any],
        q: str | None = None,
        role: Role | None = None,
        active: bool | None = None,
        sort: str | None = None,
        cursor: str | None = None,
        limit: int | None = None,
    ) -> UserPage:
        """Users, searchable by name and email, filterable by role."""
        page = parse_page(
            sort=sort, cursor=cursor, limit=limit, columns=USER_SORTS, default="createdAt"
        )
        return await list_users(reader, page, sort or "createdAt", q=q, role=role, active=active)

    @get("/{user_id:uuid}")
    async def get_one(self, user_id: UUID, reader: AsyncConnection[Any]) -> UserView:
        """One user."""
        user = await get_user(reader, user_id)
        if user is None:
            raise NotFoundException(f"user {user_id} not found")
        return user

    @patch("/{user_id:uuid}")
    async def change_role(
        self,
        user_id: UUID,
        data: ChangeRole,
        store: EventStore,
        context: CommandContext,
        sessions: Sessions,
        if_match: int | None,
    ) -> Response[UserView]:
        """Give the user another role (not yourself); their sessions end."""
        command = partial(change_user_role, store, context, user_id, data, if_match=if_match)
        outcome = await run_sync(command)
        await sessions.revoke_user(str(user_id))
        return done(user_view(outcome.value), outcome.position)

    @delete("/{user_id:uuid}", status_code=200)
    async def deactivate(
        self,
        user_id: UUID,
        store: EventStore,
        context: CommandContext,
        sessions: Sessions,
        if_match: int | None,
    ) -> Response[UserView]:
        """Deactivate (not yourself): no more sign-ins, sessions end, history stays."""
        command = partial(deactivate_user, store, context, user_id, if_match=if_match)
        outcome = await run_sync(command)
        await sessions.revoke_user(str(user_id))
        return done(user_view(outcome.value), outcome.position)
