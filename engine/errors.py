"""Charging errors carrying the exact CGRateS error strings.

CGRateS clients match on these strings (``NOT_FOUND``, ``INSUFFICIENT_CREDIT``,
``MANDATORY_IE_MISSING: [Account]``), so the code is the wire value and the
optional detail is for humans and logs only.
"""

from __future__ import annotations

NOT_FOUND = "NOT_FOUND"
EXISTS = "EXISTS"
SERVER_ERROR = "SERVER_ERROR"
MANDATORY_IE_MISSING = "MANDATORY_IE_MISSING"
INSUFFICIENT_CREDIT = "INSUFFICIENT_CREDIT"
UNAUTHORIZED_DESTINATION = "UNAUTHORIZED_DESTINATION"
RATING_PLAN_NOT_FOUND = "RATING_PLAN_NOT_FOUND"
ACCOUNT_NOT_FOUND = "ACCOUNT_NOT_FOUND"
ACCOUNT_DISABLED = "ACCOUNT_DISABLED"
MAX_USAGE_EXCEEDED = "MAX_USAGE_EXCEEDED"
SESSION_NOT_FOUND = "SESSION_NOT_FOUND"
NO_ACTIVE_SESSION = "NO_ACTIVE_SESSION"
PARTIALLY_EXECUTED = "PARTIALLY_EXECUTED"
NOT_IMPLEMENTED = "NOT_IMPLEMENTED"
INVALID_PATH = "INVALID_PATH"
INVALID_ARGUMENT = "INVALID_ARGUMENT"
UNSUPPORTED_REQUEST_TYPE = "UNSUPPORTED_REQUEST_TYPE"

# Disconnect causes sent to agents (CGRateS DisconnectCause values).
CAUSE_INSUFFICIENT_CREDIT = "INSUFFICIENT_CREDIT"
CAUSE_SESSION_TIMEOUT = "SESSION_TIMEOUT"
CAUSE_FORCED_DISCONNECT = "FORCED_DISCONNECT"
CAUSE_SERVER_ERROR = "SERVER_ERROR"
CAUSE_UNAUTHORIZED_DESTINATION = "UNAUTHORIZED_DESTINATION"


class ChargingError(Exception):
    """An error with a CGRateS-compatible code string.

    ``str(err)`` is what goes on the wire: the code alone, or ``CODE: detail``
    when the detail is part of the CGRateS format (``MANDATORY_IE_MISSING``,
    ``SERVER_ERROR: ...``). ``reason`` is a human explanation that never
    changes the wire string.
    """

    def __init__(self, code: str, detail: str = "", *, reason: str = "") -> None:
        self.code = code
        self.detail = detail
        self.reason = reason or detail
        super().__init__(self.wire())

    def wire(self) -> str:
        return f"{self.code}: {self.detail}" if self.detail else self.code

    def __str__(self) -> str:  # pragma: no cover - trivial
        return self.wire()


def mandatory_missing(*fields: str) -> ChargingError:
    """``MANDATORY_IE_MISSING: [Account Destination]`` exactly as CGRateS prints it."""
    return ChargingError(MANDATORY_IE_MISSING, "[" + " ".join(fields) + "]")


def server_error(inner: str) -> ChargingError:
    """``SERVER_ERROR: <inner>``, the wrapping CGRateS uses for rating errors in APIerSv1."""
    return ChargingError(SERVER_ERROR, inner)
