"""The one settings object: every knob of every stage, from SMSFUNNEL_* environment variables."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class AccountSecrets(BaseModel):
    """What the edge needs to authenticate one account's requests. Any left empty disables the
    receivers that need it for that account (they answer 401)."""

    model_config = ConfigDict(extra="forbid")

    api_key: SecretStr = SecretStr("")  # Bearer token: send API, links, generic webhooks
    webhook_token: SecretStr = SecretStr("")  # ?token= for gateways that cannot sign (Vonage,
    # Jasmin, Kannel, TUNE/Everflow macro URLs)
    twilio_auth_token: SecretStr = SecretStr("")
    shopify_secret: SecretStr = SecretStr("")
    postback_secret: SecretStr = SecretStr("")  # ?secret= or HMAC-SHA256 of the body


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SMSFUNNEL_", extra="ignore")

    state_dir: Path = Field(
        default=PROJECT_ROOT / ".smsfunnel",
        description="Where the local broker, the embedded ClickHouse store and worker state live.",
    )
    kafka_bootstrap: str | None = Field(
        default=None,
        description="host:port of an existing Kafka. Unset: the local broker under state_dir.",
    )
    clickhouse_dsn: str | None = Field(
        default=None,
        description="chdb:///abs/dir (embedded, default under state_dir) or http(s)://user:pw@host:port/db.",
    )
    partitions: int = Field(
        default=12,
        ge=1,
        description="Partitions of every per-message topic. Fixed up front: changing it breaks "
        "co-partitioning and table state, so it is a planned migration, not a knob.",
    )
    phone_hash_key: SecretStr = Field(
        default=SecretStr("smsfunnel-demo-key-change-me"),
        description="Secret of the keyed hash applied to phone numbers at the edge.",
    )
    view_through: bool = Field(
        default=False, description="Credit deliveries as touches too (view-through attribution)."
    )
    half_life_hours: int = Field(default=168, ge=1, description="Time-decay model half-life.")
    allowed_lateness_hours: float = Field(
        default=72,
        gt=0,
        description="How far behind the newest event of its partition an event may arrive and "
        "still be joined. A message's state is kept until the watermark passes its horizon "
        "(send + two attribution windows) by this much; later events are written out as late. "
        "72 h covers SMPP receipts of a 48-72 h validity period, Shopify's and affiliate "
        "networks' retries (hours to a day) and a weekend-long outage upstream.",
    )
    closed_marker_days: float = Field(
        default=30,
        gt=0,
        description="How long an evicted message leaves a ~100-byte marker, so that a later "
        "event of it is called late (window_closed) rather than an orphan.",
    )
    worker_id: str = Field(
        default="smsfunnel-worker", description="The worker's consumer group (Quix app)."
    )
    worker_session_timeout: float = Field(
        default=15.0,
        gt=3,
        description="Seconds before a dead worker's partitions move to the others (a long "
        "timeout stalls every crash recovery for that long).",
    )
    worker_commit_interval: float = Field(
        default=1.0,
        gt=0,
        description="Seconds between the worker's checkpoints (outputs flushed, state "
        "changelogged, input offsets committed). Longer: fewer commits; a crash replays more.",
    )
    worker_processing_guarantee: Literal["at-least-once", "exactly-once"] = Field(
        default="at-least-once",
        description="Quix Streams' processing guarantee for the worker's stages.",
    )
    worker_shutdown_timeout: float = Field(
        default=20.0,
        gt=0,
        description="Seconds a worker told to stop (SIGTERM, Ctrl-C) may take to flush and "
        "commit; past it (the broker away) it exits anyway, as a crash would: the next worker "
        "replays from the group's last commit.",
    )
    worker_metrics_port: int = Field(default=9101, description="Prometheus /metrics of the worker.")
    sink_group: str = Field(default="smsfunnel-sink")
    sink_http_port: int = Field(
        default=9102, description="/metrics and read-only /query of the sink."
    )
    sink_instance_id: str | None = Field(
        default=None,
        description="Static group membership (KIP-345): a restarted sink with the same id takes "
        "its partitions back at once instead of waiting out the session timeout. Unique per "
        "sink process: two sinks with one id fence each other.",
    )
    sink_query_requires_account: bool = Field(
        default=False,
        description="Refuse /query requests that are not scoped to an account (with its api "
        "key). Off: the operator's loopback queries (reports) may read every account.",
    )
    sink_batch_rows: int = Field(default=50_000, ge=1, description="A batch closes at this size…")
    sink_batch_seconds: float = Field(default=2.0, gt=0, description="…or this age.")
    sink_health_seconds: float = Field(
        default=300.0,
        ge=0,
        description="Seconds between the sink's runs of the campaign-health diagnostics over "
        "every account, with their default thresholds (smsfunnel_campaign_health_findings, the "
        "campaign-health alerts); 0: never.",
    )
    accounts: dict[str, AccountSecrets] = Field(
        default_factory=dict,
        description='Per-account secrets of the ingest edge, JSON: {"acme": {"api_key": "…", '
        '"twilio_auth_token": "…", "shopify_secret": "…", "postback_secret": "…", '
        '"webhook_token": "…"}}. An account not listed is refused (401).',
    )
    link_signing_key: SecretStr = Field(
        default=SecretStr("smsfunnel-demo-link-key-change-me"),
        description="Signs tracking-link tokens and click ids (the redirector and postbacks).",
    )
    ingest_http_port: int = Field(default=9103, description="Webhooks, postbacks, send API.")
    ingest_host: str = Field(
        default="127.0.0.1",
        description="Address the receivers listen on: loopback for the local stack; 0.0.0.0 "
        "(or the interface's address) behind the proxy that providers reach in production.",
    )
    ingest_public_url: str | None = Field(
        default=None,
        description="The receivers' URL as providers call it (https://hooks.example.com): "
        "Twilio signs the URL it called, which a proxy in front changes. Unset: the request's.",
    )
    ingest_ack_timeout: float = Field(
        default=4.0,
        gt=0,
        description="Seconds a receiver waits for Kafka's acknowledgement before answering "
        "503 (Shopify expects an answer within 5 s).",
    )
    gateway_timezone: str = Field(
        default="UTC", description="Zone of SMPP receipt dates (they carry none)."
    )
    redirector_port: int = Field(default=9104, description="The click redirector.")
    redirector_host: str = Field(
        default="127.0.0.1",
        description="Address the redirector listens on: loopback for the local stack; 0.0.0.0 "
        "(or the interface's address) where recipients' phones reach it in production.",
    )
    redirector_impl: Literal["go", "python"] = Field(
        default="go",
        description="The compiled redirector (producers/redirector_go, built by `make install`) "
        "or the Python one (producers/redirector.py); same tokens, records and metrics.",
    )
    redirector_workers: int = Field(
        default=1, ge=1, description="Python redirector processes (the Go one uses every core)."
    )
    redirector_linger_ms: int = Field(
        default=10,
        ge=0,
        le=1000,
        description="How long the redirector lets clicks gather before sending them to Kafka: "
        "fewer, larger requests, at the price of losing up to this window's clicks in a crash.",
    )
    redirector_base_url: str = Field(
        default="http://127.0.0.1:9104",
        description="The tracking domain as it appears in SMS links (<base>/<token>).",
    )

    @field_validator("state_dir")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @cached_property
    def kafka_dir(self) -> Path:
        return self.state_dir / "kafka"

    @property
    def effective_clickhouse_dsn(self) -> str:
        return self.clickhouse_dsn or f"chdb://{self.state_dir / 'clickhouse'}"

    def bootstrap_servers(self) -> str:
        """The broker to talk to: the configured one, else the running local broker."""
        if self.kafka_bootstrap:
            return self.kafka_bootstrap
        from infra.local_kafka import LocalKafka

        address = LocalKafka(self.kafka_dir).address()
        if address is None:
            raise RuntimeError(
                "No Kafka: set SMSFUNNEL_KAFKA_BOOTSTRAP or start the local broker "
                "with `smsfunnel kafka start`."
            )
        return address


def get_settings() -> Settings:
    return Settings()
