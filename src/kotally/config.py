"""One Settings class, read from the environment (prefix KOTALLY_)."""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from kotally.embed.frames import DEFAULT_FRAME_ANCESTORS, parse_frame_ancestors

DEFAULT_SECRET_KEY = "kotally-development-secret-change-me"  # noqa: S105 - refused in production
# GHL's published Ed25519 webhook key (X-GHL-Signature), SPKI as the base64 of the DER.
GHL_ED25519_PUBLIC_KEY = "MCowBQYDK2VwAyEAi2HR1srL4o18O8BRa7gVJY7G7bupbN3H9AwJrHCDiOg="


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KOTALLY_", extra="ignore")

    env: Literal["development", "production"] = "development"
    database_url: str = "sqlite:///kotally.db"
    # Keys the token hashes (HMAC-SHA256). Changing it invalidates every issued token.
    secret_key: str = DEFAULT_SECRET_KEY

    # PostgreSQL: how long a statement may wait for a row lock before giving up (503 / 409).
    db_lock_timeout_seconds: float = Field(default=5.0, gt=0)
    # SQLite: how long a writer waits for the database write lock.
    db_busy_timeout_seconds: float = Field(default=10.0, gt=0)
    # SQLite: FULL fsyncs the WAL on every commit (survives power loss); NORMAL survives crashes.
    sqlite_synchronous: Literal["FULL", "NORMAL"] = "FULL"
    # SQLite: the API's writes are group-committed, and its reads run, on the event loop
    # (db/group_commit.py). Off: each request on the thread pool.
    sqlite_group_commit: bool = True
    db_pool_size: int = Field(default=10, ge=1, le=200)
    # PostgreSQL: per server process, how many statements of the API's checks (and as many of
    # its deducts) may be out at once; the requests that arrive meanwhile share the next one
    # (db/pg_batch.py). On two cores one and two were alike on a small ledger; with two, a
    # statement that waits for a lock or the disk holds back less (bench/RESULTS.md).
    db_batches_in_flight: int = Field(default=2, ge=1, le=50)
    # Threads per process for the API's database work (PostgreSQL; SQLite's reads run on the
    # event loop and its writes on the group-commit writer).
    api_db_threads: int = Field(default=2, ge=1, le=200)
    db_pool_overflow: int = Field(default=10, ge=0, le=200)

    body_bytes_max: int = Field(default=64 * 1024, ge=1024)
    # `kotally serve`: how long an idle keep-alive connection stays open (uvicorn's default, 5).
    # Behind a proxy or load balancer that reuses connections, set it above the proxy's idle
    # timeout, or the proxy may send a request on a connection the server is closing.
    keep_alive_seconds: int = Field(default=5, ge=1, le=3600)
    # Token bucket per API client: this many requests per second, bursts up to rate_limit_burst.
    rate_limit_per_second: int = Field(default=50, ge=0)
    rate_limit_burst: int = Field(default=100, ge=1)
    redis_url: str | None = None

    # Inbound webhooks (webhooks.md): body limit, and GHL's public keys (PEM text or base64 DER).
    # The legacy RSA key (X-WH-Signature) has no default: unset, only Ed25519 is accepted.
    webhook_body_bytes_max: int = Field(default=262144, ge=1024)
    ghl_webhook_ed25519_public_key: str | None = GHL_ED25519_PUBLIC_KEY
    ghl_webhook_rsa_public_key: str | None = None

    expire_sweep_interval_seconds: float = Field(default=60.0, ge=0)

    # Admin UI (docs/admin.md): a session ends after this long without a request, and after
    # ADMIN_SESSION_LIFETIME_SECONDS whatever its activity.
    admin_session_idle_seconds: int = Field(default=30 * 60, ge=60)
    admin_session_lifetime_seconds: int = Field(default=12 * 3600, ge=60)
    # Failed sign-ins counted over this window; past either maximum, sign-in is refused (429).
    admin_sign_in_window_seconds: int = Field(default=15 * 60, ge=1)
    admin_sign_in_account_failures_max: int = Field(default=5, ge=1)
    admin_sign_in_address_failures_max: int = Field(default=20, ge=1)
    # The address the webhook URLs on the location page start with; the request's own by default.
    public_base_url: str | None = None

    # Staff embed (docs/embed.md): the GHL app's Shared Secret that decrypts the user context;
    # unset, every embed sign-in is refused (401). The origins allowed to frame /embed.
    ghl_app_shared_secret: SecretStr | None = None
    embed_frame_ancestors: str = DEFAULT_FRAME_ANCESTORS

    @field_validator("embed_frame_ancestors")
    @classmethod
    def _frame_ancestors(cls, value: str) -> str:
        return parse_frame_ancestors(value)

    log_level: str = "INFO"

    def check_production(self) -> None:
        """Refuse to run in production mode with a default or missing secret."""
        if self.env == "production" and (
            not self.secret_key
            or self.secret_key == DEFAULT_SECRET_KEY
            or len(self.secret_key) < 32
        ):
            raise ValueError(
                "KOTALLY_SECRET_KEY must be set to a random value of at least 32 characters "
                "when KOTALLY_ENV=production"
            )


@lru_cache
def get_settings() -> Settings:
    return Settings()
