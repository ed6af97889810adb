"""Append-only Merkle audit log, checkpoints, proofs and receipts (issue 3; not built yet)."""
