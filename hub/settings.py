"""Process settings read once from the environment (prefix ``HUB_``) and passed down explicitly."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

Environment = Literal["dev", "demo", "test", "production"]


class Settings(BaseSettings):
    """Every knob of the hub. Domain code receives values from here; it never reads ``os.environ``."""

    model_config = SettingsConfigDict(env_prefix="HUB_", extra="ignore")

    env: Environment = "dev"
    data_dir: Path = Path("var")
    database_url: str | None = None
    storage_url: str | None = None
    broker_url: str = "memory://"
    result_backend_url: str | None = None
    public_url: str = "http://127.0.0.1:8000"
    master_key: SecretStr | None = None
    master_key_file: Path | None = None

    access_token_ttl_seconds: int = Field(default=600, ge=30, le=3600)
    # RFC 7523 §3: the assertion must expire; we refuse long-lived ones so a leaked
    # assertion is useless within minutes.
    client_assertion_max_lifetime_seconds: int = Field(default=300, ge=10, le=3600)
    # How long a retired signing key stays in the JWKS: long enough to cover every token
    # it signed.
    key_overlap_seconds: int = Field(default=3600, ge=60)

    oidc_issuer: str | None = None
    oidc_audience: str = "licence-hub"
    oidc_jwks_url: str | None = None

    # C2SP tlog-checkpoint origin line (and note key name) of the audit log; derived from public_url.
    audit_origin: str | None = None
    audit_checkpoint_interval_seconds: float = Field(default=60.0, gt=0)

    # Organisation named in the hub PKI's CA certificates (seals.pki).
    pki_organization: str = "licence-hub"

    # Where department seal keys live (seals.keystore): encrypted under the master key in the
    # database, or generated on a PKCS#11 token they never leave. The module defaults to SoftHSM2's.
    seal_keystore: Literal["software", "pkcs11"] = "software"
    pkcs11_module: Path | None = None
    pkcs11_token_label: str = "licence-hub"  # noqa: S105 - a token label, not a secret
    pkcs11_pin: SecretStr | None = None
    # Roots of other hubs whose seals this hub accepts (跨域验签): a PEM bundle, checked at start-up.
    trusted_roots_file: Path | None = None

    # When set, GET /metrics answers only "Authorization: Bearer <token>" (a Prometheus scrape job's
    # bearer_token); unset, it is open, for a deployment that keeps /metrics off the public proxy.
    metrics_token: SecretStr | None = None

    log_level: str = "INFO"
    log_json: bool = True
    scheduler_enabled: bool = True
    # Embedded default (memory:// broker): background jobs run on an in-process thread pool, or
    # inline in the caller's thread after its commit (tests: deterministic, one connection).
    inline_jobs: bool = False

    # Licences (issue 5): presentation tokens (扫码亮证) live at most 5 minutes; reminders before expiry.
    presentation_ttl_seconds: int = Field(default=120, ge=10, le=300)
    expiry_reminder_days: tuple[int, ...] = (30, 7, 1)
    batch_chunk_rows: int = Field(default=200, ge=1, le=10_000)
    batch_max_rows: int = Field(default=100_000, ge=1)
    # Where an API process's audit group committer runs (hub.audit_process): ``process``, a child process of
    # its own with its own GIL and core, fed over a socket pair; ``thread``, a thread inside the API process;
    # ``auto``, a process for the served API (``licence-hub serve`` / ``demo``) and a thread for an app built
    # in-process (tests, embedding). CLI commands and workers always use a thread.
    audit_committer: Literal["auto", "thread", "process"] = "auto"
    # A batch without progress this long is re-driven (its pending chunks dispatched again).
    batch_stalled_seconds: float = Field(default=300.0, gt=0)
    # Redis broker: an unacknowledged task (its worker was killed) is delivered again after this long.
    broker_visibility_timeout_seconds: int = Field(default=900, ge=1)
    # Request bodies over these sizes are refused with 413 before they are read (hub.api.body_limit, which also
    # holds the fixed limits of verification uploads and seal images). A JSON API call needs a few KiB. A batch
    # row (one POST /v1/licences body) is about 1 KiB, so HUB_BATCH_MAX_ROWS rows fit with room to spare;
    # rows times their 64 KiB line limit (6.4 GB) would be no limit at all.
    max_body_bytes: int = Field(default=1 << 20, ge=64 << 10)
    max_batch_body_bytes: int = Field(default=256 << 20, ge=1 << 20)

    # Catalogue (issue 6): providers answer access requests within N working days (国发〔2016〕51号: 10),
    # handlers answer objections within M; holidays and make-up working days (调休) come from a JSON file
    # {"holidays": ["2026-10-01", ...], "workdays": ["2026-10-10", ...]}; without one only weekends are off.
    access_request_working_days: int = Field(default=10, ge=1, le=60)
    objection_working_days: int = Field(default=5, ge=1, le=60)
    working_calendar_file: Path | None = None
    # Grants whose request does not name a validity run this long; quotas count per calendar day here.
    grant_default_valid_days: int = Field(default=365, ge=1, le=3650)

    # Exchange (issue 7): a fetch's file_url works this long; the purpose-stamped copy (加注件) it serves
    # says it is valid for this many days (the time a case is usually handled in).
    exchange_file_url_ttl_seconds: int = Field(default=600, ge=30, le=86_400)
    exchange_copy_valid_days: int = Field(default=30, ge=1, le=365)
    # Departments that fetched or verified a licence this recently hear when it is suspended, revoked,
    # amended, renewed or expires (push notices).
    exchange_notice_window_days: int = Field(default=365, ge=1, le=3650)
    # Each API client may make ``burst`` exchange calls at once, refilled at ``rate`` a second (token bucket,
    # shared through Redis when the broker is Redis); beyond that 429 client_rate_limited with Retry-After.
    # Requests inside the application at once (hub.api.admission); the rest wait on the event loop. Keep it at
    # or below the database pool (10 + 10 overflow) and the thread pool (40).
    max_concurrent_requests: int = Field(default=10, ge=1, le=1000)
    # QR scans in flight at once (their own admission lane: they hold no thread or connection while waiting).
    max_concurrent_scans: int = Field(default=256, ge=1, le=10_000)
    exchange_client_burst: int = Field(default=60, ge=1, le=100_000)
    exchange_client_rate_per_second: float = Field(default=20.0, gt=0, le=100_000)

    @model_validator(mode="after")
    def _production_needs_real_identity(self) -> Settings:
        if self.env == "production" and self.oidc_issuer and self.oidc_issuer == self.dev_idp_issuer:
            msg = "the development identity provider cannot be the holder issuer in production"
            raise ValueError(msg)
        return self

    @model_validator(mode="after")
    def _pkcs11_needs_a_pin(self) -> Settings:
        if self.seal_keystore == "pkcs11" and not (self.pkcs11_pin and self.pkcs11_pin.get_secret_value()):
            msg = (
                "HUB_SEAL_KEYSTORE=pkcs11 needs HUB_PKCS11_PIN, the user PIN of the token "
                f"labelled {self.pkcs11_token_label!r}"
            )
            raise ValueError(msg)
        return self

    @property
    def is_development(self) -> bool:
        """Dev/demo/test: the built-in development identity provider is available."""
        return self.env in {"dev", "demo", "test"}

    @cached_property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'hub.db').resolve()}"

    @cached_property
    def resolved_storage_url(self) -> str:
        return self.storage_url or (self.data_dir / "blobs").resolve().as_uri()

    @cached_property
    def resolved_master_key_file(self) -> Path:
        return self.master_key_file or self.data_dir / "keys" / "master.key"

    @property
    def token_endpoint(self) -> str:
        return f"{self.public_url.rstrip('/')}/oauth/token"

    @property
    def issuer(self) -> str:
        """RFC 8414 §2 issuer identifier of the hub's authorization server."""
        return self.public_url.rstrip("/")

    @property
    def api_audience(self) -> str:
        """``aud`` of access tokens: the hub's resource server."""
        return f"{self.public_url.rstrip('/')}/v1"

    @property
    def dev_idp_issuer(self) -> str:
        return f"{self.public_url.rstrip('/')}/dev/idp"

    @property
    def holder_issuer(self) -> str | None:
        """Issuer whose ID tokens sign holders in; the dev IdP by default outside production."""
        if self.oidc_issuer:
            return self.oidc_issuer
        return self.dev_idp_issuer if self.is_development else None

    @property
    def resolved_audit_origin(self) -> str:
        if self.audit_origin:
            return self.audit_origin
        return self.public_url.split("://", 1)[-1].rstrip("/") + "/audit"

    @property
    def is_eager(self) -> bool:
        return self.broker_url.startswith("memory://")
