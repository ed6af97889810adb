"""The process's wiring: settings, database, storage, keys and caches, built once and passed down."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

# Every process that builds a runtime (API, worker, CLI) loads every model and, with them, the hooks domains
# register on each other: licence types into the catalogue, licence changes into push notices.
import hub.schema  # noqa: F401
from audit.append import AuditSigner
from audit.committer import AuditCommitter, GroupCommitter
from audit.models import STATE_ROW, AuditState
from catalog.grant_check import GrantCache, cache_for
from hub.db import begin_read_only, make_engine, make_session_factory
from hub.exchange.ratelimit import Limiter, MemoryLimiter, RedisLimiter
from hub.identity.oidc import RemoteJwks
from hub.identity.service import PublicKeyCache
from hub.jobs import run_after_close
from hub.keys.masterkey import MasterKeyRing, load_master_key_ring
from hub.settings import Settings
from hub.storage import BlobStore, open_blob_store
from licences.holders import PublishedKeys
from licences.issuance import LicenceContext
from licences.status_lists import SignedLists
from seals.keystore import SealKeyStore, open_keystore
from seals.lifecycle import SealContext
from seals.sealing import PreparedSeals
from seals.trust import load_roots


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    session_factory: sessionmaker[Session]
    storage: BlobStore
    key_cache: PublicKeyCache = field(default_factory=PublicKeyCache)
    # Sessions for the audit group committer; None means the ordinary session factory.
    audit_session_factory: sessionmaker[Session] | None = None
    # PostgreSQL: the committer's own plain connection (libpq DSN); None means it appends through sessions.
    audit_dsn: str | None = None

    @cached_property
    def master_keys(self) -> MasterKeyRing:
        secret = self.settings.master_key.get_secret_value() if self.settings.master_key else None
        return load_master_key_ring(secret, self.settings.resolved_master_key_file)

    @cached_property
    def seal_keystore(self) -> SealKeyStore:
        """Custody of department seal keys, one per process so its signers are cached once."""
        settings = self.settings
        pin = settings.pkcs11_pin.get_secret_value() if settings.pkcs11_pin else None
        return open_keystore(
            settings.seal_keystore, self.master_keys, settings.pkcs11_module, settings.pkcs11_token_label, pin
        )

    @cached_property
    def grant_cache(self) -> GrantCache:
        """Grant snapshots for the exchange's per-call decision (catalog.grant_check: staleness bound 1 s)."""
        return cache_for(self)

    @cached_property
    def client_limiter(self) -> Limiter:
        """Exchange burst limits per API client: in Redis when the broker is Redis (shared), else in-process."""
        burst, rate = self.settings.exchange_client_burst, self.settings.exchange_client_rate_per_second
        if self.settings.broker_url.startswith(("redis://", "rediss://")):
            return RedisLimiter(self.settings.broker_url, burst, rate)
        return MemoryLimiter(burst, rate)

    @cached_property
    def extra_trust_roots(self) -> tuple[bytes, ...]:
        """Other hubs' roots from ``HUB_TRUSTED_ROOTS_FILE``, read once (DER)."""
        path = self.settings.trusted_roots_file
        return load_roots(path) if path is not None else ()

    @cached_property
    def prepared_seals(self) -> PreparedSeals:
        """Per-seal signing material (certificates, templates, appearance), built once per seal."""
        return PreparedSeals()

    @cached_property
    def seal_context(self) -> SealContext:
        return SealContext(self.seal_keystore, self.master_keys, self.storage, self.settings.public_url)

    @cached_property
    def licence_context(self) -> LicenceContext:
        return LicenceContext(
            public_url=self.settings.public_url,
            storage=self.storage,
            master_keys=self.master_keys,
            seal_context=self.seal_context,
            prepared_seals=self.prepared_seals,
            audit_signer=lambda: self.audit_signer,
        )

    @cached_property
    def presentation_keys(self) -> PublishedKeys:
        """Verification keys of QR presentations, cached briefly per process (licences.holders)."""
        return PublishedKeys(self.settings.key_overlap_seconds)

    @cached_property
    def signed_status_lists(self) -> SignedLists:
        """Signed W3C status list JWTs, re-signed only when their list changed."""
        return SignedLists()

    @cached_property
    def holder_jwks(self) -> RemoteJwks | None:
        """Key set of an external holder IdP; None when the built-in dev IdP is the issuer."""
        settings = self.settings
        if settings.holder_issuer is None or settings.holder_issuer == settings.dev_idp_issuer:
            return None
        url = settings.oidc_jwks_url or f"{settings.holder_issuer.rstrip('/')}/jwks.json"
        return RemoteJwks(url)

    @cached_property
    def audit_signer(self) -> AuditSigner:
        """The audit key and holder_ref secret, decrypted once per process."""
        from hub.keys import service as keys  # noqa: PLC0415 - keys import models that import hub.db

        with self.session_factory() as session:
            # A reader beside the caller's own unit of work (first issuance after start-up holds
            # SQLite's write lock): DEFERRED, so it never waits for that writer.
            begin_read_only(session)
            ed_key = keys.ed25519_key(session, self.master_keys, keys.AUDIT)
            holder_secret = keys.secret(session, self.master_keys, keys.HOLDER_REF)
            stored = session.scalar(select(AuditState.origin).where(AuditState.id == STATE_ROW))
        origin = stored or self.settings.resolved_audit_origin
        return AuditSigner(origin, ed_key.kid, ed_key.private_key, holder_secret)

    @cached_property
    def audit(self) -> AuditCommitter:
        """Durable audit appends in their own (shared) transaction: reads, disclosures and denials.

        A thread in this process; the API app replaces it with a ``hub.audit_process.ProcessCommitter``
        when ``HUB_AUDIT_COMMITTER=process``.
        """
        return self.thread_committer()

    def thread_committer(self) -> GroupCommitter:
        return GroupCommitter(
            self.audit_session_factory or self.session_factory,
            lambda: self.audit_signer,
            dsn=self.audit_dsn,
            read_sessions=self.session_factory,
            context=self,
        )

    def close(self) -> None:
        """Drain the audit committer and close every connection pool this runtime opened."""
        if "audit" in vars(self):
            self.audit.close()
        audit_bind = self.audit_session_factory.kw.get("bind") if self.audit_session_factory else None
        if isinstance(audit_bind, Engine):
            audit_bind.dispose()
        self.engine.dispose()

    @contextmanager
    def session_scope(self) -> Iterator[Session]:
        """The unit of work for CLI commands and tasks: commit on success, roll back otherwise."""
        session = self.session_factory()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()
        run_after_close(session)


def build_runtime(settings: Settings) -> Runtime:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.resolved_database_url)
    audit_dsn = None
    if engine.dialect.name == "postgresql":
        # The committer's one writer thread keeps its own plain psycopg connection: no pool pre-ping
        # and no ORM per batch; a dead connection fails one batch (503) and is replaced on the next.
        audit_dsn = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    return Runtime(
        settings=settings,
        engine=engine,
        session_factory=make_session_factory(engine),
        storage=open_blob_store(settings.resolved_storage_url),
        audit_dsn=audit_dsn,
    )


_runtime: Runtime | None = None


def get_runtime() -> Runtime:
    """The process-wide runtime for Celery tasks and the CLI, built from the environment once."""
    global _runtime  # noqa: PLW0603 - one runtime per process, like an app factory's app
    if _runtime is None:
        _runtime = build_runtime(Settings())
    return _runtime


def set_runtime(runtime: Runtime | None) -> None:
    global _runtime  # noqa: PLW0603
    _runtime = runtime
