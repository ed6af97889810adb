"""Audit errors with stable codes."""

from __future__ import annotations

from hub.errors import Conflict, DomainError, InvalidInput, NotFound


class AuditEntryNotFound(NotFound):
    code = "audit_entry_not_found"
    title = "No audit entry at that leaf index"


class CheckpointNotFound(NotFound):
    code = "checkpoint_not_found"
    title = "No checkpoint covers that tree size"


class ProofRequestInvalid(InvalidInput):
    code = "proof_request_invalid"
    title = "A proof cannot be made for those sizes"


class AuditLogTampered(DomainError):
    """Stored entries no longer match their leaf hashes or have gaps: an integrity alarm."""

    status = 500
    code = "audit_log_tampered"
    title = "The audit log failed its integrity check; no checkpoint was signed"


class IntegrationBusy(Conflict):
    code = "integration_busy"
    title = "Another process is integrating the log right now"
