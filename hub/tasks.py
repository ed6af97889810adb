"""Celery tasks of the hub kernel; each takes ids, commits in one place and is safe to repeat."""

from __future__ import annotations

from hub.audited import integrate_pending
from hub.identity.service import purge_spent_assertions
from hub.jobs import celery_app
from hub.runtime import get_runtime
from seals import ltv
from seals import service as pki
from seals.trust import trust_settings


@celery_app.task(name="hub.identity.purge_spent_assertions")  # type: ignore[untyped-decorator]
def purge_spent_assertions_task() -> int:
    """Delete spent client-assertion ids whose assertions have expired."""
    with get_runtime().session_scope() as session:
        return purge_spent_assertions(session)


@celery_app.task(name="audit.tree.integrate")  # type: ignore[untyped-decorator]
def integrate_audit_log() -> int:
    """Integrate committed audit entries in chunks and publish checkpoints; returns how many."""
    return integrate_pending(get_runtime())


@celery_app.task(name="seals.crl.refresh")  # type: ignore[untyped-decorator]
def refresh_crls() -> int:
    """Re-sign stale CRLs of the hub CAs; returns their CRL numbers' sum (changes when re-signed)."""
    runtime = get_runtime()
    with runtime.session_scope() as session:
        return sum(pki.refresh_crl(session, runtime.master_keys, ca).crl_number for ca in (pki.ROOT, pki.ISSUING))


@celery_app.task(name="seals.document.augment_lta")  # type: ignore[untyped-decorator]
def augment_lta(sha256: str) -> str:
    """B-LTA (ETSI EN 319 142-1 §5.5) for a stored sealed PDF: DSS with CRLs, then a document time-stamp.

    Takes the stored file's sha256 and returns the augmented file's; the input is never overwritten
    (content-addressed storage), so a retry only adds another valid copy.
    """
    runtime = get_runtime()
    with runtime.session_scope() as session:
        trust = trust_settings(session, runtime.extra_trust_roots)
        stamper = pki.get_timestamper(session, runtime.master_keys)
    return runtime.storage.put(ltv.augment_to_lta(runtime.storage.get(sha256), trust, stamper))
