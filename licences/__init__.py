"""Licence types, issuance, identifiers, rendering, lifecycle and QR presentation (issue 5; not built yet)."""
