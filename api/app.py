"""The Litestar application factory."""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager
from typing import Any

import msgspec
from litestar import Litestar, Router
from litestar._openapi.schema_generation.plugins.struct import StructSchemaPlugin
from litestar.logging.config import LoggingConfig
from litestar.middleware import DefineMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, Schema, SecurityScheme
from litestar.typing import FieldDefinition

from api.auth import TokenAuthenticationMiddleware, route_declares_access
from api.dependencies import DEPENDENCIES
from api.errors import EXCEPTION_HANDLERS
from api.health import health
from api.idempotency import idempotency_middleware
from api.metrics import metrics, metrics_middleware
from api.middleware import request_id_middleware
from api.ratelimit import rate_limit_middleware
from api.routes.analytics import AnalyticsController
from api.routes.api_keys import ApiKeyController
from api.routes.audit import AuditController
from api.routes.auth import AuthController
from api.routes.catalogue import ProductController
from api.routes.customers import CustomerController
from api.routes.inventory import InventoryController
from api.routes.locations import LocationController
from api.routes.orders import OrderController
from api.routes.payments import CheckoutController, PaymentController, stripe_webhook
from api.routes.projections import ProjectionController
from api.routes.reports import ReportController
from api.routes.returns import ReturnController
from api.routes.settings import SettingsController
from api.routes.users import UserController
from api.security import LimitedRequest, add_security_headers, cors_config, refuse_nul_in_url
from api.services import Services
from api.ws import changes_socket
from application.settings import Settings

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


class StrictStructSchema(StructSchemaPlugin):
    """Request bodies that refuse unknown fields say so: `additionalProperties: false`."""

    def to_openapi_schema(self, field_definition: FieldDefinition, schema_creator: Any) -> Schema:
        """Litestar's schema of a msgspec Struct, stricter where the Struct is."""
        schema = super().to_openapi_schema(field_definition, schema_creator)
        info = msgspec.inspect.type_info(field_definition.type_)
        if isinstance(schema, Schema) and getattr(info, "forbid_unknown_fields", False):
            schema.additional_properties = False
        return schema


def create_app(settings: Settings | None = None) -> Litestar:
    """Build the API for `settings` (read from the environment when None)."""
    settings = settings or Settings.from_env()
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    logging.getLogger().setLevel(settings.log_level)  # also when handlers were set up before

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncGenerator[None, None]:
        services = await Services.start(settings)
        app.state.services = services
        try:
            yield
        finally:
            await services.stop()

    api_v1 = Router(
        path="/api/v1",
        route_handlers=[
            AuthController,
            ProductController,
            LocationController,
            InventoryController,
            CustomerController,
            OrderController,
            SettingsController,
            AuditController,
            CheckoutController,
            PaymentController,
            ReturnController,
            UserController,
            ApiKeyController,
            AnalyticsController,
            ReportController,
            ProjectionController,
        ],
        security=[{"BearerToken": []}, {"ApiKey": []}],
    )
    return Litestar(
        route_handlers=[api_v1, changes_socket, health, metrics, stripe_webhook],
        lifespan=[lifespan],
        dependencies=DEPENDENCIES,
        exception_handlers=EXCEPTION_HANDLERS,
        middleware=[
            metrics_middleware,  # outermost: times everything else too
            request_id_middleware,
            DefineMiddleware(
                TokenAuthenticationMiddleware, exclude=["^/schema", "^/health", "^/metrics"]
            ),
            rate_limit_middleware,  # inside authentication: limits are per caller
            idempotency_middleware,  # inside authentication: keys are scoped per caller
        ],
        guards=[route_declares_access],  # fails closed for routes that declare no permission
        before_send=[add_security_headers],
        before_request=refuse_nul_in_url,
        request_class=LimitedRequest,
        plugins=[StrictStructSchema()],
        request_max_body_size=settings.max_body_bytes,
        # Litestar would otherwise set the root logger to INFO, whatever PMS_LOG_LEVEL says.
        logging_config=LoggingConfig(configure_root_logger=False),
        cors_config=cors_config(settings),
        openapi_config=OpenAPIConfig(
            title="PMS",
            version="1.0.0",
            path="/schema",
            components=Components(
                security_schemes={
                    "BearerToken": SecurityScheme(
                        type="http", scheme="bearer", bearer_format="JWT"
                    ),
                    "ApiKey": SecurityScheme(
                        type="apiKey", name="X-API-Key", security_scheme_in="header"
                    ),
                }
            ),
        ),
        debug=False,
    )
