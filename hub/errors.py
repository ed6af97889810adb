"""Domain errors with a stable code and HTTP status, rendered as RFC 9457 problem+json by the HTTP layer."""

from __future__ import annotations

from typing import Any, ClassVar


class DomainError(Exception):
    """Base of every error a caller may see.

    Subclasses name the thing and the condition (``ClientUnknown``, ``TokenExpired``) and carry
    a stable machine-readable ``code`` plus the HTTP ``status``; ``detail`` says what is allowed.
    """

    status: ClassVar[int] = 400
    code: ClassVar[str] = "bad_request"
    title: ClassVar[str] = "Bad request"

    def __init__(self, detail: str | None = None, **extensions: Any) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.extensions = extensions
        self.headers: dict[str, str] = {}
        # Set by the HTTP layer when this refusal is audited: the event to record after the
        # request's transaction rolled back, then the receipt to return with the problem.
        self.audit_event: Any = None
        self.receipt: dict[str, Any] | None = None

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled by state, not by constructor arguments (subclasses' constructors differ).

        Refusals cross from the audit process to the API process this way (hub.audit_process).
        """
        return (_restore, (type(self), self.args, self.__dict__))

    def problem(self) -> dict[str, Any]:
        """RFC 9457 §3.1 members plus our stable ``code`` extension member."""
        body: dict[str, Any] = {
            "type": f"https://licence-hub.example/problems/{self.code}",
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            "code": self.code,
        }
        body.update(self.extensions)
        if self.receipt is not None:
            body["receipt"] = self.receipt  # DESIGN.md §4: denied calls carry their receipt too
        return body


def _restore(cls: type[DomainError], args: tuple[Any, ...], state: dict[str, Any]) -> DomainError:
    error = cls.__new__(cls, *args)
    Exception.__init__(error, *args)
    error.__dict__.update(state)
    return error


class InvalidInput(DomainError):
    status = 422
    code = "invalid_input"
    title = "The request is not valid"


class InvalidUSCC(InvalidInput):
    code = "invalid_uscc"
    title = "Not a valid unified social credit code (GB 32100)"


class InvalidIdNumber(InvalidInput):
    code = "invalid_id_number"
    title = "Not a valid citizen ID number (GB 11643)"


class NotFound(DomainError):
    status = 404
    code = "not_found"
    title = "Not found"


class Conflict(DomainError):
    status = 409
    code = "conflict"
    title = "Conflict with the current state"


class Unauthenticated(DomainError):
    """RFC 6750 §3: the caller presented no usable credentials."""

    status = 401
    code = "unauthenticated"
    title = "Authentication required"


class Forbidden(DomainError):
    status = 403
    code = "forbidden"
    title = "Not allowed"


class ServiceUnavailable(DomainError):
    status = 503
    code = "service_unavailable"
    title = "A backing service is unavailable; retry later"


class StorageFull(ServiceUnavailable):
    """The disk under the file store or the embedded database is full: nothing was written; free space, retry."""

    code = "storage_full"
    title = "The hub's storage is full; nothing was saved. Retry once an operator has freed space"
