"""What the simulated switch and operator believe: calls, top-ups, who may be overdrawn.

The engine is never asked what it "should" have charged; the invariants compare the
engine's own books (balances, ledger, CDRs, live sessions) with each other and with
these few facts the outside world knows for certain (how much money was put in, which
calls were ended and with what usage, which calls used more than they were granted).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from tests.soak.harness import CARRIER

ORIGIN_HOST = "soak-sw"

# Call states as the switch sees them.
LIVE = "live"            # in progress, the switch lists it
ORPHAN = "orphan"        # the switch lost it: no update or terminate will ever come
HANGING_UP = "hanging_up"  # told to disconnect; the switch sends its terminate later
ENDED = "ended"          # the switch sent (or will never need) a terminate
REFUSED = "refused"      # initiate answered MaxUsage 0: nothing may remain of it
PENDING_CDR = "pending"  # one-shot (SMS) charged, its CDR not sent yet


@dataclass
class Call:
    """One call (or one-shot event) the switch made."""

    origin: str
    account: str
    destination: str
    request_type: str = "*prepaid"
    tor: str = "*voice"
    category: str = "call"
    loop: bool = True
    opts: dict[str, Any] = field(default_factory=dict)
    answer: str = ""
    start_mono: int = 0
    state: str = LIVE
    used: int = 0              # usage confirmed with LastUsed (manual mode)
    last_grant: int = 0        # the engine's last MaxUsage
    kind: str = "session"      # session | oneshot | cdr | rated | sms
    cost: Decimal | None = None  # *rated: the cost the switch sent
    expect_cdr: bool = True

    @property
    def runs(self) -> set[str]:
        """Charging runs this call must have a CDR for (the carrier run for Germany)."""
        return {"*default", "carrier"} if self.destination.startswith("+49") else {"*default"}

    @property
    def accounts(self) -> set[str]:
        return {self.account, CARRIER} if "carrier" in self.runs else {self.account}

    def fields(self, **extra: Any) -> dict[str, Any]:
        out: dict[str, Any] = {
            "OriginID": self.origin, "OriginHost": ORIGIN_HOST, "Account": self.account,
            "Destination": self.destination, "RequestType": self.request_type, "ToR": self.tor,
            "Category": self.category,
        }
        if self.answer:
            out["AnswerTime"] = self.answer
        out.update(extra)
        return {k: v for k, v in out.items() if v is not None}


@dataclass
class World:
    """Everything the outside world knows for certain."""

    initial: dict[str, Decimal] = field(default_factory=dict)
    topups: dict[str, Decimal] = field(default_factory=lambda: defaultdict(Decimal))
    calls: dict[str, Call] = field(default_factory=dict)
    # Accounts on which the engine was allowed to go below zero, and why (first reason kept).
    overdraw: dict[str, str] = field(default_factory=dict)
    counter: int = 0
    log: list[str] = field(default_factory=list)

    def new_origin(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}-{self.counter}"

    def allow_overdraw(self, call: Call, why: str, *, default_run_only: bool = False) -> None:
        """``default_run_only``: only the caller's account (a postpaid call's carrier run is
        still prepaid and honest)."""
        for account in ({call.account} if default_run_only else call.accounts):
            self.overdraw.setdefault(account, f"{why} ({call.origin})")

    def live(self) -> list[Call]:
        return [c for c in self.calls.values() if c.state == LIVE]

    def note(self, text: str) -> None:
        """Keep the last steps so a failure shows what led to it."""
        self.log.append(text)
        if len(self.log) > 60:
            del self.log[:20]
