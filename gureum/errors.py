"""Domain errors.

Services raise these; each API family turns them into its own OpenStack fault
body in exactly one place (``gureum.api.faults``). An error carries its HTTP
status so the mapping never needs an if-chain.
"""

from __future__ import annotations

from typing import Any


class GureumError(Exception):
    """Base of every error gureum raises on purpose."""

    status = 500
    title = "Internal Server Error"

    def __init__(self, message: str = "", **details: Any) -> None:
        super().__init__(message or self.title)
        self.message = message or self.title
        self.details = details


class ConfigError(GureumError):
    """Settings that cannot be used; raised before anything starts."""


class InvalidInput(GureumError):
    status = 400
    title = "Bad Request"

    def __init__(self, message: str, field: str | None = None, **details: Any) -> None:
        super().__init__(message, **details)
        self.field = field


class Unauthorized(GureumError):
    status = 401
    title = "Unauthorized"

    def __init__(self, message: str = "The request you have made requires authentication.",
                 **details: Any) -> None:
        super().__init__(message, **details)


class Forbidden(GureumError):
    status = 403
    title = "Forbidden"

    def __init__(self, message: str = "You are not authorized to perform the requested action.",
                 **details: Any) -> None:
        super().__init__(message, **details)


class QuotaExceeded(Forbidden):
    """Over a quota, where the service answers 403 (Nova)."""

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message, **details)


class NotFound(GureumError):
    status = 404
    title = "Not Found"

    def __init__(self, message: str = "The resource could not be found.",
                 kind: str = "", **details: Any) -> None:
        super().__init__(message, **details)
        self.kind = kind


class MethodNotAllowed(GureumError):
    status = 405
    title = "Method Not Allowed"

    def __init__(self, message: str = "The method is not allowed for this resource.",
                 allowed: tuple[str, ...] = (), **details: Any) -> None:
        super().__init__(message, **details)
        self.allowed = allowed


class NotAcceptable(GureumError):
    status = 406
    title = "Not Acceptable"


class RequestTimeout(GureumError):
    """The client stopped sending its request body."""

    status = 408
    title = "Request Timeout"


class Conflict(GureumError):
    status = 409
    title = "Conflict"


class InvalidState(Conflict):
    """An action is not allowed in the resource's current state."""


class StaleRead(Conflict):
    """A compare-and-swap found the row changed since this transaction read it: the
    request is run again in a new transaction (gureum/api/transaction.py), which sees
    the change; when it keeps losing, the client gets this 409."""


class Gone(GureumError):
    status = 410
    title = "Gone"


class PayloadTooLarge(GureumError):
    status = 413
    title = "Request Entity Too Large"


class OverQuota(GureumError):
    status = 413
    title = "Over Quota"


class HeadersTooLarge(GureumError):
    status = 431
    title = "Request Header Fields Too Large"


class UnsupportedMediaType(GureumError):
    status = 415
    title = "Unsupported Media Type"


class RangeNotSatisfiable(GureumError):
    status = 416
    title = "Requested Range Not Satisfiable"


class NotImplementedYet(GureumError):
    status = 501
    title = "Not Implemented"


class ServiceUnavailable(GureumError):
    status = 503
    title = "Service Unavailable"
