"""Audit errors with stable codes."""

from __future__ import annotations

from hub.errors import Conflict, InvalidInput, NotFound


class AuditEntryNotFound(NotFound):
    code = "audit_entry_not_found"
    title = "No audit entry at that leaf index"


class CheckpointNotFound(NotFound):
    code = "checkpoint_not_found"
    title = "No checkpoint covers that tree size"


class ProofRequestInvalid(InvalidInput):
    code = "proof_request_invalid"
    title = "A proof cannot be made for those sizes"


class IntegrationBusy(Conflict):
    code = "integration_busy"
    title = "Another process is integrating the log right now"
