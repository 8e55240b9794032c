"""Shared fixtures for account tests: a real SQLite storage and a started AccountService."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from engine.accounts import AccountService
from engine.storage import open_storage

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=timezone.utc)


@pytest.fixture
async def storage(tmp_path):
    store = open_storage(tmp_path)
    await store.open()
    yield store
    await store.close()


@pytest.fixture
def rater_box():
    """Holds the rater the service sees (tests put a real Rater built from a small plan in it)."""
    return {"rater": None, "plan": None}


@pytest.fixture
async def service(storage, rater_box):
    svc = AccountService(storage, lambda: rater_box["rater"], tariffplan=lambda: rater_box["plan"],
                         clock=lambda: T0)
    await svc.start()
    return svc


# --- a stand-in rater until tests switch to the real one ---------------------------------------
from dataclasses import dataclass  # noqa: E402
from decimal import Decimal  # noqa: E402

SECOND = 10**9


@dataclass(frozen=True, slots=True)
class Req:
    """Same fields as engine.rating.rater.RatingRequest."""

    tenant: str
    category: str
    subject: str
    destination: str
    start: datetime
    usage: int
    tor: str = "*voice"
    offset: int = 0
    cost_so_far: Decimal = Decimal(0)


@dataclass(frozen=True, slots=True)
class _Cost:
    cost: Decimal
    usage: int


@dataclass(frozen=True, slots=True)
class _Affordable:
    usage: int
    cost: Decimal
    reason: str


class LinearRater:
    """``per_second`` money per started second, connect fee at offset 0; prefixes -> dest ids."""

    def __init__(self, per_second: str = "0.01", connect_fee: str = "0",
                 destinations: dict[str, str] | None = None) -> None:
        self.per_second = Decimal(per_second)
        self.connect_fee = Decimal(connect_fee)
        self.destinations = destinations or {}
        self.calls = 0

    def _cost(self, req, usage: int) -> Decimal:
        seconds = -(-usage // SECOND)
        return (self.connect_fee if req.offset == 0 else Decimal(0)) + seconds * self.per_second

    def rate(self, req):
        self.calls += 1
        return _Cost(self._cost(req, req.usage), req.usage)

    def max_affordable(self, req, credit):
        self.calls += 1
        if credit is None or self._cost(req, req.usage) <= credit:
            return _Affordable(req.usage, self._cost(req, req.usage), "")
        seconds = 0
        while (seconds + 1) * SECOND <= req.usage and self._cost(req, (seconds + 1) * SECOND) <= credit:
            seconds += 1
        usage = seconds * SECOND
        return _Affordable(usage, self._cost(req, usage) if usage else Decimal(0), "INSUFFICIENT_CREDIT")

    def destination_ids(self, number: str) -> frozenset[str]:
        return frozenset(d for p, d in self.destinations.items() if number.startswith(p))


@pytest.fixture
def linear():
    """The LinearRater class (conftest classes are not importable under importlib mode)."""
    return LinearRater


@pytest.fixture
def make_req():
    def make(usage_s: float, destination: str = "1002", *, tor: str = "*voice",
             category: str = "call", start: datetime = T0, offset_s: float = 0, units: int | None = None):
        usage = units if units is not None else int(Decimal(str(usage_s)) * SECOND)
        return Req("cgrates.org", category, "1001", destination, start, usage, tor,
                   int(Decimal(str(offset_s)) * SECOND))
    return make
