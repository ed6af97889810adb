"""``licence-hub init``: data directory, master key, schema, signing keys, bucket; safe to repeat."""

from __future__ import annotations

from typing import Any

from audit import service as audit
from catalog import classifications
from hub import migrate
from hub.keys import service as keys
from hub.keys.masterkey import create_master_key_file
from hub.runtime import Runtime
from hub.storage import S3BlobStore
from seals import service as pki


def initialise(runtime: Runtime) -> dict[str, Any]:
    """Create whatever is missing and report what was created; existing state is reused."""
    settings = runtime.settings
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {"data_dir": str(settings.data_dir.resolve())}
    if settings.master_key is None:
        path = settings.resolved_master_key_file
        report["master_key_file"] = str(path)
        report["master_key_created"] = create_master_key_file(path)
    migrate.upgrade(runtime.engine)
    report["database"] = runtime.engine.url.render_as_string(hide_password=True)
    with runtime.session_scope() as session:
        report["keys_created"] = keys.ensure_keys(session, runtime.master_keys)
        report["audit_origin"] = audit.fix_origin(session, settings.resolved_audit_origin)
        report["cas_created"] = pki.ensure_cas(
            session, runtime.master_keys, organization=settings.pki_organization, public_url=settings.public_url
        )
        report["tsa_certified"] = pki.ensure_tsa(
            session, runtime.master_keys, organization=settings.pki_organization, public_url=settings.public_url
        )
        for ca in (pki.ROOT, pki.ISSUING):
            pki.refresh_crl(session, runtime.master_keys, ca)
        report["classifications_created"] = classifications.ensure_classifications(session)
    if isinstance(runtime.storage, S3BlobStore):
        runtime.storage.ensure_bucket()
    runtime.storage.ping()
    report["storage"] = settings.resolved_storage_url.split("@")[-1]  # never print S3 credentials
    return report
