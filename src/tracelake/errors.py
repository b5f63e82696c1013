"""The one exception tree of tracelake. Each error carries the HTTP status it maps to and
the MLflow ``error_code`` (so the real ``mlflow`` client raises a proper MlflowException).

    TracelakeError
    ├── InvalidRequest          400 INVALID_PARAMETER_VALUE
    │   └── BadFilter           400 INVALID_PARAMETER_VALUE  (points at the offending token)
    ├── Unauthenticated         401 UNAUTHENTICATED
    ├── PermissionDenied        403 PERMISSION_DENIED
    ├── NotFound                404 RESOURCE_DOES_NOT_EXIST
    ├── AlreadyExists           400 RESOURCE_ALREADY_EXISTS  (MLflow answers 400 here)
    ├── PayloadTooLarge         413 REQUEST_LIMIT_EXCEEDED
    ├── UnsupportedMediaType    415 INVALID_PARAMETER_VALUE
    ├── Unprocessable           422 INVALID_PARAMETER_VALUE
    ├── LimitExceeded           400 RESOURCE_LIMIT_EXCEEDED  (max traces, spans per trace, ...)
    ├── RateLimited             429 REQUEST_LIMIT_EXCEEDED   (has retry_after seconds)
    └── Overloaded              503 TEMPORARILY_UNAVAILABLE  (has retry_after seconds)

The SDK never raises these into the host app; the store and the server do.
"""
from __future__ import annotations


class TracelakeError(Exception):
    status: int = 500
    error_code: str = "INTERNAL_ERROR"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidRequest(TracelakeError):
    status = 400
    error_code = "INVALID_PARAMETER_VALUE"


class BadFilter(InvalidRequest):
    """A search filter that does not parse; ``position`` is the 0-based offset of the bad token."""

    def __init__(self, message: str, filter_string: str = "", position: int | None = None) -> None:
        if position is not None and filter_string:
            pointer = f"\n  {filter_string}\n  {' ' * position}^"
            full = f"{message} (at position {position}){pointer}"
        else:
            full = message
        super().__init__(full)
        self.filter_string = filter_string
        self.position = position
        self.reason = message


class Unauthenticated(TracelakeError):
    status = 401
    error_code = "UNAUTHENTICATED"


class PermissionDenied(TracelakeError):
    status = 403
    error_code = "PERMISSION_DENIED"


class NotFound(TracelakeError):
    status = 404
    error_code = "RESOURCE_DOES_NOT_EXIST"


class AlreadyExists(TracelakeError):
    status = 400
    error_code = "RESOURCE_ALREADY_EXISTS"


class PayloadTooLarge(TracelakeError):
    status = 413
    error_code = "REQUEST_LIMIT_EXCEEDED"


class UnsupportedMediaType(TracelakeError):
    status = 415
    error_code = "INVALID_PARAMETER_VALUE"


class Unprocessable(TracelakeError):
    status = 422
    error_code = "INVALID_PARAMETER_VALUE"


class LimitExceeded(TracelakeError):
    status = 400
    error_code = "RESOURCE_LIMIT_EXCEEDED"


class RateLimited(TracelakeError):
    status = 429
    error_code = "REQUEST_LIMIT_EXCEEDED"

    def __init__(self, message: str, retry_after: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Overloaded(TracelakeError):
    status = 503
    error_code = "TEMPORARILY_UNAVAILABLE"

    def __init__(self, message: str, retry_after: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after
