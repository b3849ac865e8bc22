"""API keys for integrations (admin): issue (shown once), list, revoke."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import msgspec
from litestar import Controller, Response, delete, get, post
from litestar.datastructures import State
from psycopg import AsyncConnection

from api.auth import api_keys_last_used, requires
from api.dependencies import services
from api.responses import created, done
from application.api_keys import CreateApiKey, create_api_key, revoke_api_key
from application.context import CommandContext
from application.permissions import Permission
from application.store import EventStore
from domain.api_keys import ApiKey
from projections.paging import parse_page
from projections.user_queries import API_KEY_SORTS, ApiKeyPage, ApiKeyView, list_api_keys


class ApiKeyCreated(ApiKeyView, rename="camel", frozen=True):
    """A new key with its secret: `key` is shown this once and never stored."""

    key: str = ""


def api_key_view(api_key: ApiKey) -> ApiKeyView:
    """The wire shape of a key, from the aggregate a command returned."""
    return ApiKeyView(
        id=api_key.id,
        name=api_key.name,
        role=api_key.role,
        prefix=api_key.prefix,
        active=api_key.active,
        version=api_key.version,
        created_at=api_key.created_on,
        revoked_at=None if api_key.active else api_key.modified_on,
    )


def _last_used(key: ApiKeyView, used: dict[str, int]) -> ApiKeyView:
    at = used.get(str(key.id))
    return (
        key
        if at is None
        else msgspec.structs.replace(key, last_used_at=datetime.fromtimestamp(at, UTC))
    )


class ApiKeyController(Controller):
    """Keys sent as `X-API-Key` (or `?token=` on the websocket); a key's scope is a role."""

    path = "/api-keys"
    tags = ["identity"]
    guards = [requires(Permission.USERS_ADMIN)]

    @post(sync_to_thread=True)
    def create(
        self, data: CreateApiKey, store: EventStore, context: CommandContext
    ) -> Response[ApiKeyCreated]:
        """Issue a key with a role; the answer is the only place the key ever appears."""
        outcome = create_api_key(store, context, data)
        issued = outcome.value
        view = ApiKeyCreated(**msgspec.structs.asdict(api_key_view(issued.api_key)), key=issued.key)
        return created(view, outcome.position, f"/api/v1/api-keys/{issued.api_key.id}")

    @get()
    async def index(
        self,
        reader: AsyncConnection[Any],
        state: State,
        active: bool | None = None,
        sort: str | None = None,
        cursor: str | None = None,
        limit: int | None = None,
    ) -> ApiKeyPage:
        """Keys with their last use; never their secrets."""
        page = parse_page(
            sort=sort, cursor=cursor, limit=limit, columns=API_KEY_SORTS, default="createdAt"
        )
        found = await list_api_keys(reader, page, sort or "createdAt", active=active)
        used = await api_keys_last_used(services(state).redis, [str(k.id) for k in found.items])
        return ApiKeyPage(
            items=[_last_used(key, used) for key in found.items], next_cursor=found.next_cursor
        )

    @delete("/{key_id:uuid}", status_code=200, sync_to_thread=True)
    def revoke(
        self, key_id: UUID, store: EventStore, context: CommandContext, if_match: int | None
    ) -> Response[ApiKeyView]:
        """Revoke: the key stops working at once."""
        outcome = revoke_api_key(store, context, key_id, if_match=if_match)
        return done(api_key_view(outcome.value), outcome.position)
