"""Outgoing webhooks: departments' endpoints, the CloudEvents outbox, signed and retried deliveries."""
