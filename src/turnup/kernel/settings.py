"""Runtime configuration, read from TURNUP_* environment variables."""

from __future__ import annotations

from functools import lru_cache

from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Everything an operator can configure; see README "Configuration"."""

    model_config = SettingsConfigDict(env_prefix="TURNUP_", env_file=None, extra="ignore")

    database_url: str = "sqlite:///./turnup.db"
    host: str = "127.0.0.1"
    port: int = 8000
    log_level: str = "info"
    public_url: str = ""
    run_worker: bool = True  # `turnup serve` also runs the outbox delivery worker
    run_orchestrator: bool = True  # `turnup serve` also runs order workflows (DBOS) in-process
    # Outbox delivery: retries with exponential backoff, base * 2**attempt, capped.
    delivery_backoff_base_seconds: float = 2.0
    delivery_backoff_cap_seconds: float = 600.0
    delivery_max_attempts: int = 30
    delivery_timeout_seconds: float = 10.0
    # Webhooks (turnup.kernel.webhooks): callbacks to non-public addresses are refused unless their network
    # is listed here (comma-separated CIDRs); deliveries are signed with secrets derived from this key.
    webhook_allowed_networks: str = ""
    webhook_signing_key: str = ""
    worker_poll_seconds: float = 0.5
    # Housekeeping (expired stock/rack holds, expired quotes, number aging): seconds between runs; 0 disables.
    sweep_interval_seconds: float = 60.0
    # Durable event consumers (turnup.kernel.consumers): polling, batch, retry schedule.
    run_consumers: bool = True  # `turnup serve` also runs the event consumers in a thread
    consumer_poll_seconds: float = 0.1
    consumer_batch_size: int = 100
    consumer_batch_seconds: float = 0.2  # a batch commits once its handlers have taken this long
    consumer_backoff_base_seconds: float = 1.0
    consumer_backoff_cap_seconds: float = 300.0
    consumer_retention_days: float = 7.0  # handled inbox rows (done, skipped) are pruned after this; 0 keeps
    # Request guard (turnup.api.guard): the largest request body, checked before it is read and before
    # authentication; bulk imports (paths ending in "Import") have their own limit.
    max_body_bytes: int = 4 * 1024 * 1024
    max_import_body_bytes: int = 64 * 1024 * 1024
    # Idempotency-Key on POST: how long a key's first response is kept and replayed (then swept).
    idempotency_key_ttl_hours: float = 24.0
    # Login (turnup.security): failed attempts counted per username and per source address within a window;
    # reaching the limit locks that username (or source) for the lockout time. State is in the database.
    login_max_failures_per_user: int = 5
    login_max_failures_per_source: int = 20
    login_window_seconds: float = 900.0
    login_lockout_seconds: float = 900.0
    api_token_default_days: float = 90.0  # lifetime of a new API token unless given (`--expires-in`)
    # Tamper-evident records (turnup.kernel.keys): the key outside the database that MACs the audit chain's
    # head and anchors and agreement signatures. TURNUP_AUDIT_KEY wins over TURNUP_SECRET_KEY.
    secret_key: str = ""  # TOTP secret sealing (required to enable TOTP); audit key unless TURNUP_AUDIT_KEY
    audit_key: str = ""
    audit_anchor_every: int = 1000  # an anchor every N audit entries (0: only sweeps, `turnup audit anchor`)
    audit_anchor_file: str = ""  # also append each anchor as a JSON line to this file (outside the database)
    # `turnup audit verify`: an unchained row younger than this is reported as pending, not as an insertion
    audit_unchained_grace_seconds: float = 60.0

    @property
    def base_url(self) -> str:
        return self.public_url or f"http://{self.host}:{self.port}"


@lru_cache
def get_settings() -> Settings:
    return Settings()
