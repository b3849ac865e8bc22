"""Settings: one frozen value built from PMS_* environment variables."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any


class SettingsError(ValueError):
    """An environment variable has a value we cannot use."""


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be an integer, got {raw!r}") from None


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number, got {raw!r}") from None


def _names(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    """A comma-separated list, e.g. PMS_CORS_ORIGINS=https://a.example,https://b.example."""
    return tuple(part.strip() for part in env.get(name, "").split(",") if part.strip())


def _limits(env: Mapping[str, str], name: str) -> tuple[tuple[str, int], ...]:
    """Per-group numbers, e.g. PMS_RATE_LIMIT_GROUPS=auth=20,reports=10."""
    pairs = []
    for part in _names(env, name):
        group, _, raw = part.partition("=")
        try:
            pairs.append((group.strip(), int(raw)))
        except ValueError:
            raise SettingsError(f"{name} must look like group=number,..., got {part!r}") from None
    return tuple(pairs)


@dataclass(frozen=True)
class Settings:
    """Everything a PMS process needs to know about its environment."""

    database_url: str = ""
    nats_url: str = ""
    redis_url: str = ""
    host: str = "127.0.0.1"
    port: int = 8000
    data_dir: Path = Path("var")
    log_level: str = "INFO"
    jwt_secret: str = field(default="", repr=False)
    audit_key: str = field(default="", repr=False)
    stripe_api_key: str = field(default="", repr=False)
    stripe_api_base: str = "https://api.stripe.com"
    stripe_webhook_secret: str = field(default="", repr=False)
    jwt_issuer: str = "pms"
    jwt_audience: str = "pms-api"
    access_token_ttl_seconds: int = 900
    admin_email: str = "admin@example.com"
    admin_password: str = field(default="", repr=False)
    max_body_bytes: int = 1024 * 1024
    rate_limit_per_minute: int = 100
    min_position_wait_seconds: float = 2.0
    db_pool_size: int = 10
    aggregate_cache_size: int = 0  # aggregates kept per process between commands; 0: none
    command_retries: int = 10
    api_workers: int = 1
    stream_name: str = "PMS_EVENTS"
    event_store: str = "xid"  # "xid" (XidOrderedRecorder) or "stock" (eventsourcing's, benchmarks)
    refresh_token_ttl_seconds: int = 14 * 24 * 3600
    rate_limit_groups: tuple[tuple[str, int], ...] = ()  # per-minute limits by route group
    login_max_attempts: int = 5  # failed logins per account before back-off
    login_ip_max_attempts: int = 20  # failed logins per client address before back-off
    login_lockout_seconds: int = 30  # the first back-off; doubles with each further failure
    cors_origins: tuple[str, ...] = ()
    max_json_depth: int = 32
    max_json_string_length: int = 16_384

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read PMS_* variables (from `env`, or the process environment when None)."""
        env = os.environ if env is None else env
        defaults = cls()
        return cls(
            database_url=env.get("PMS_DATABASE_URL", ""),
            nats_url=env.get("PMS_NATS_URL", ""),
            redis_url=env.get("PMS_REDIS_URL", ""),
            host=env.get("PMS_HOST", defaults.host),
            port=_int(env, "PMS_PORT", defaults.port),
            data_dir=Path(env.get("PMS_DATA_DIR", str(defaults.data_dir))),
            log_level=env.get("PMS_LOG_LEVEL", defaults.log_level).upper(),
            jwt_secret=env.get("PMS_JWT_SECRET", ""),
            audit_key=env.get("PMS_AUDIT_KEY", ""),
            stripe_api_key=env.get("PMS_STRIPE_API_KEY", ""),
            stripe_api_base=env.get("PMS_STRIPE_API_BASE", defaults.stripe_api_base),
            stripe_webhook_secret=env.get("PMS_STRIPE_WEBHOOK_SECRET", ""),
            jwt_issuer=env.get("PMS_JWT_ISSUER", defaults.jwt_issuer),
            jwt_audience=env.get("PMS_JWT_AUDIENCE", defaults.jwt_audience),
            access_token_ttl_seconds=_int(
                env, "PMS_ACCESS_TOKEN_TTL", defaults.access_token_ttl_seconds
            ),
            admin_email=env.get("PMS_ADMIN_EMAIL", defaults.admin_email),
            admin_password=env.get("PMS_ADMIN_PASSWORD", ""),
            max_body_bytes=_int(env, "PMS_MAX_BODY_BYTES", defaults.max_body_bytes),
            rate_limit_per_minute=_int(env, "PMS_RATE_LIMIT", defaults.rate_limit_per_minute),
            min_position_wait_seconds=_float(
                env, "PMS_MIN_POSITION_WAIT", defaults.min_position_wait_seconds
            ),
            db_pool_size=_int(env, "PMS_DB_POOL_SIZE", defaults.db_pool_size),
            aggregate_cache_size=_int(env, "PMS_AGGREGATE_CACHE", defaults.aggregate_cache_size),
            command_retries=_int(env, "PMS_COMMAND_RETRIES", defaults.command_retries),
            api_workers=_int(env, "PMS_API_WORKERS", defaults.api_workers),
            stream_name=env.get("PMS_STREAM_NAME", defaults.stream_name),
            event_store=env.get("PMS_EVENT_STORE", "").strip().lower() or defaults.event_store,
            refresh_token_ttl_seconds=_int(
                env, "PMS_REFRESH_TOKEN_TTL", defaults.refresh_token_ttl_seconds
            ),
            rate_limit_groups=_limits(env, "PMS_RATE_LIMIT_GROUPS"),
            login_max_attempts=_int(env, "PMS_LOGIN_MAX_ATTEMPTS", defaults.login_max_attempts),
            login_ip_max_attempts=_int(
                env, "PMS_LOGIN_IP_MAX_ATTEMPTS", defaults.login_ip_max_attempts
            ),
            login_lockout_seconds=_int(env, "PMS_LOGIN_LOCKOUT", defaults.login_lockout_seconds),
            cors_origins=_names(env, "PMS_CORS_ORIGINS"),
            max_json_depth=_int(env, "PMS_MAX_JSON_DEPTH", defaults.max_json_depth),
            max_json_string_length=_int(
                env, "PMS_MAX_JSON_STRING", defaults.max_json_string_length
            ),
        )

    def with_changes(self, **changes: Any) -> Settings:
        """A copy with some fields replaced."""
        return replace(self, **changes)

    def require_servers(self) -> None:
        """Fail with a one-line reason when a server URL is missing."""
        missing = [
            name
            for name, value in (
                ("PMS_DATABASE_URL", self.database_url),
                ("PMS_NATS_URL", self.nats_url),
                ("PMS_REDIS_URL", self.redis_url),
            )
            if not value
        ]
        if missing:
            raise SettingsError(f"missing {', '.join(missing)} (or run `pms dev`)")
        if not self.jwt_secret:
            raise SettingsError("missing PMS_JWT_SECRET")

    def as_env(self) -> dict[str, str]:
        """The PMS_* variables that reproduce these settings in a child process."""
        return {
            "PMS_DATABASE_URL": self.database_url,
            "PMS_NATS_URL": self.nats_url,
            "PMS_REDIS_URL": self.redis_url,
            "PMS_HOST": self.host,
            "PMS_PORT": str(self.port),
            "PMS_DATA_DIR": str(self.data_dir),
            "PMS_LOG_LEVEL": self.log_level,
            "PMS_JWT_SECRET": self.jwt_secret,
            "PMS_AUDIT_KEY": self.audit_key,
            "PMS_STRIPE_API_KEY": self.stripe_api_key,
            "PMS_STRIPE_API_BASE": self.stripe_api_base,
            "PMS_STRIPE_WEBHOOK_SECRET": self.stripe_webhook_secret,
            "PMS_JWT_ISSUER": self.jwt_issuer,
            "PMS_JWT_AUDIENCE": self.jwt_audience,
            "PMS_ACCESS_TOKEN_TTL": str(self.access_token_ttl_seconds),
            "PMS_ADMIN_EMAIL": self.admin_email,
            "PMS_MAX_BODY_BYTES": str(self.max_body_bytes),
            "PMS_RATE_LIMIT": str(self.rate_limit_per_minute),
            "PMS_MIN_POSITION_WAIT": str(self.min_position_wait_seconds),
            "PMS_DB_POOL_SIZE": str(self.db_pool_size),
            "PMS_AGGREGATE_CACHE": str(self.aggregate_cache_size),
            "PMS_COMMAND_RETRIES": str(self.command_retries),
            "PMS_API_WORKERS": str(self.api_workers),
            "PMS_STREAM_NAME": self.stream_name,
            "PMS_EVENT_STORE": self.event_store,
            "PMS_REFRESH_TOKEN_TTL": str(self.refresh_token_ttl_seconds),
            "PMS_RATE_LIMIT_GROUPS": ",".join(f"{g}={n}" for g, n in self.rate_limit_groups),
            "PMS_LOGIN_MAX_ATTEMPTS": str(self.login_max_attempts),
            "PMS_LOGIN_IP_MAX_ATTEMPTS": str(self.login_ip_max_attempts),
            "PMS_LOGIN_LOCKOUT": str(self.login_lockout_seconds),
            "PMS_CORS_ORIGINS": ",".join(self.cors_origins),
            "PMS_MAX_JSON_DEPTH": str(self.max_json_depth),
            "PMS_MAX_JSON_STRING": str(self.max_json_string_length),
        }
