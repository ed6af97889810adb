"""Errors of the webhook kernel, each with a stable code."""

from __future__ import annotations

from hub.errors import Conflict, InvalidInput, NotFound, Unauthenticated


class WebhookUrlInvalid(InvalidInput):
    code = "webhook_url_invalid"
    title = "The webhook URL is not acceptable"


class WebhookTypesInvalid(InvalidInput):
    code = "webhook_types_invalid"
    title = "The event type filter is not acceptable"


class WebhookEventInvalid(InvalidInput):
    """A caller of ``emit`` passed an id, type, subject or data the hub cannot send as a CloudEvent."""

    code = "webhook_event_invalid"
    title = "The webhook event is not acceptable"


class WebhookEndpointLimit(Conflict):
    code = "webhook_endpoint_limit"
    title = "The department has registered the most webhook endpoints allowed"


class WebhookEndpointNotFound(NotFound):
    code = "webhook_endpoint_not_found"
    title = "No such webhook endpoint"


class WebhookDeliveryNotFound(NotFound):
    code = "webhook_delivery_not_found"
    title = "No such webhook delivery"


class WebhookDeliveryNotDead(Conflict):
    code = "webhook_delivery_not_dead"
    title = "Only a dead webhook delivery can be redelivered"


class WebhookEndpointDisabled(Conflict):
    code = "webhook_endpoint_disabled"
    title = "The webhook endpoint is disabled"


class WebhookSignatureInvalid(Unauthenticated):
    """A receiver's check failed: missing headers, a stale timestamp, or no matching signature."""

    code = "webhook_signature_invalid"
    title = "The webhook signature does not verify"
