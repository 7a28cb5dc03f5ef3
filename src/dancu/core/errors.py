"""Domain errors shared by every context. Each maps to one RFC 9457 problem type in the API
and to a field message in the web forms."""

from __future__ import annotations


class DancuError(Exception):
    status = 400
    code = "bad-request"

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class NotFound(DancuError):
    status = 404
    code = "not-found"


class Unauthorized(DancuError):
    """No credentials, or credentials that prove nobody (RFC 9110 §15.5.2): 401 with a
    ``WWW-Authenticate`` challenge, unlike ``Forbidden`` for a known actor refused."""

    status = 401
    code = "unauthorized"


class Forbidden(DancuError):
    status = 403
    code = "forbidden"


class Invalid(DancuError):
    """Input that breaks a rule; ``field`` names the input field at fault."""

    status = 422
    code = "invalid"


class Conflict(DancuError):
    status = 409
    code = "conflict"
