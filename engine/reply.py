"""The one engine reply every agent maps back into its protocol.

``MaxUsage`` is integer nanoseconds (-1 unlimited, 0 refused), as in CGRateS.
Unlike CGRateS, a reply that limits or refuses also says why (``reason``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Callable

from engine.errors import ChargingError

# Reasons a MaxUsage was limited or refused (empty: granted what was asked).
REASON_NONE = ""
REASON_INSUFFICIENT_CREDIT = "INSUFFICIENT_CREDIT"
REASON_MAX_COST = "MAX_COST"
REASON_UNAUTHORIZED_DESTINATION = "UNAUTHORIZED_DESTINATION"
REASON_RATING_PLAN_NOT_FOUND = "RATING_PLAN_NOT_FOUND"
REASON_ACCOUNT_DISABLED = "ACCOUNT_DISABLED"
REASON_ACCOUNT_NOT_FOUND = "ACCOUNT_NOT_FOUND"
REASON_MAX_USAGE_EXCEEDED = "MAX_USAGE_EXCEEDED"


@dataclass(slots=True)
class Reply:
    """What the engine answers to authorize/initiate/update/terminate/message/cdr."""

    max_usage: int | None = None
    error: str = ""
    reason: str = REASON_NONE
    cost: Decimal | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    # Per charging run (RunID -> max usage / cost), for ProcessEvent-style replies.
    run_max_usage: dict[str, int] = field(default_factory=dict)
    run_cost: dict[str, Decimal] = field(default_factory=dict)
    # Balance left on the main monetary balance after this request, when known.
    balance: Decimal | None = None
    # True when these units are the last ones (Diameter Final-Unit-Indication).
    final_units: bool = False
    # What computes ``balance`` on its first read, when the engine leaves it to then: most
    # callers (the Kamailio, RADIUS and Diameter templates) never read it, and those that do
    # read it as soon as the engine answers, before anything else can change the account.
    balance_source: Callable[[], Decimal | None] | None = field(default=None, repr=False, compare=False)

    @classmethod
    def from_error(cls, err: ChargingError | str) -> "Reply":
        if isinstance(err, ChargingError):
            return cls(error=err.wire(), reason=err.reason or err.code)
        return cls(error=str(err), reason=str(err))

    def freeze_balance(self) -> None:
        """Compute a pending ``balance`` now (before an ``await`` could change the account)."""
        if self.balance_source is not None:
            self.balance = self.balance_source()

    @property
    def ok(self) -> bool:
        return not self.error

    def as_fields(self, with_balance: bool = True) -> dict[str, Any]:
        """CGRateS-named view used by templates as ``~*cgrep.<Field>``; ``with_balance``
        False leaves ``Balance`` out (a template that never reads it: not computed)."""
        out: dict[str, Any] = {
            "Error": self.error,
            "Reason": self.reason,
            "FinalUnits": self.final_units,
        }
        if self.max_usage is not None:
            out["MaxUsage"] = self.max_usage
        if self.cost is not None:
            out["Cost"] = self.cost
        if with_balance and self.balance is not None:
            out["Balance"] = self.balance
        if self.attributes:
            out["Attributes"] = dict(self.attributes)
        return out


def _lazy_balance() -> None:
    """``Reply.balance`` reads through ``balance_source`` once (then it is a plain value);
    assigning ``balance`` drops a pending source. The dataclass keeps its generated
    ``__init__``/``__eq__``/``__repr__``, which go through this property."""
    slot = Reply.balance  # the slot's member descriptor

    def get(self: Reply) -> Decimal | None:
        source = self.balance_source
        if source is not None:
            self.balance_source = None
            slot.__set__(self, source())
        return slot.__get__(self, Reply)

    def set_(self: Reply, value: Decimal | None) -> None:
        self.balance_source = None
        slot.__set__(self, value)

    Reply.balance = property(get, set_, doc="Balance left on the main monetary balance, when known.")  # type: ignore[assignment]


_lazy_balance()
