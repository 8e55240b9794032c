"""Test helpers for sessions: a manual clock, a recording agent link, a small real tariff plan."""

from __future__ import annotations

import heapq
import itertools
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Mapping

from engine.units import SECOND

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=timezone.utc)

# Destinations: 1002 costs 0.01/s (1s increments, no connect fee); 1003 has a connect fee of
# 0.10 then 0.60/min per second; 1500 costs 1.00/s in 100 ms steps (for real-time tests);
# 1004 is CGRateS's tutorial rate (0.40 connect, first minute 0.20 in one 60 s increment, then
# 0.10/min per second); SUPPL rates 1002 at 0.004/s. SMS 0.05 each. 1005 costs 0.01/s up to a
# MaxCost of 0.15 (*free: the rest of the call is free).
TP_FILES = {
    "Destinations.csv": "#Id,Prefix\nDST_1002,1002\nDST_1003,1003\nDST_1500,1500\nDST_1004,1004\nDST_1005,1005\n",
    "Rates.csv": ("#Id,ConnectFee,Rate,RateUnit,RateIncrement,GroupIntervalStart\n"
                  "RT_1CNT,0,0.01,1s,1s,0s\n"
                  "RT_CF,0.1,0.6,60s,1s,0s\n"
                  "RT_FAST,0,1,1s,100ms,0s\n"
                  "RT_SUPPL,0,0.004,1s,1s,0s\n"
                  "RT_SMS,0,0.05,1,1,0\n"
                  "RT_MIN,0.4,0.2,60s,60s,0s\n"
                  "RT_MIN,0,0.1,60s,1s,60s\n"),
    "DestinationRates.csv": ("#Id,DestinationId,RatesTag,RoundingMethod,RoundingDecimals,MaxCost,MaxCostStrategy\n"
                             "DR_1002,DST_1002,RT_1CNT,*up,4,0,\n"
                             "DR_1003,DST_1003,RT_CF,*up,4,0,\n"
                             "DR_1500,DST_1500,RT_FAST,*up,4,0,\n"
                             "DR_SUPPL,DST_1002,RT_SUPPL,*up,4,0,\n"
                             "DR_SMS,*any,RT_SMS,*up,4,0,\n"
                             "DR_1004,DST_1004,RT_MIN,*up,4,0,\n"
                             "DR_1005,DST_1005,RT_1CNT,*up,4,0.15,*free\n"),
    "RatingPlans.csv": ("#Id,DestinationRatesId,TimingTag,Weight\n"
                        "RP_STD,DR_1002,*any,10\nRP_STD,DR_1003,*any,10\nRP_STD,DR_1500,*any,10\nRP_STD,DR_1004,*any,10\n"
                        "RP_STD,DR_1005,*any,10\n"
                        "RP_SUPPL,DR_SUPPL,*any,10\nRP_SMS,DR_SMS,*any,10\n"),
    "RatingProfiles.csv": ("#Tenant,Category,Subject,ActivationTime,RatingPlanId,RatesFallbackSubject\n"
                           "cgrates.org,call,*any,2014-01-14T00:00:00Z,RP_STD,\n"
                           "cgrates.org,call,SUPPL,2014-01-14T00:00:00Z,RP_SUPPL,\n"
                           "cgrates.org,sms,*any,2014-01-14T00:00:00Z,RP_SMS,\n"),
}

SUPPLIER_CHARGERS = (
    "#Tenant,ID,FilterIDs,ActivationInterval,RunID,AttributeIDs,Weight\n"
    "cgrates.org,DEFAULT,,,*default,*none,20\n"
    "cgrates.org,SUPPLIER,*prefix:~*req.Destination:1002,,supplier,"
    "*constant:*req.RequestType:*rated;*constant:*req.Subject:SUPPL;*constant:*req.Account:suppl1,10\n"
)


def write_plan(folder: Path, chargers: str | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in TP_FILES.items():
        (folder / name).write_text(text)
    if chargers:
        (folder / "Chargers.csv").write_text(chargers)
    return folder


class _Handle:
    __slots__ = ("when", "callback", "cancelled")

    def __init__(self, when: int, callback: Callable[[], None]) -> None:
        self.when = when
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class ManualClock:
    """A clock tests move by hand; ``advance`` fires due timers in time order."""

    def __init__(self, wall: datetime = T0) -> None:
        self.base_wall = wall
        self.mono = 1_000 * SECOND
        self.base_mono = self.mono
        self._heap: list[tuple[int, int, _Handle]] = []
        self._seq = itertools.count()

    def monotonic(self) -> int:
        return self.mono

    def now(self) -> datetime:
        return self.base_wall + timedelta(microseconds=(self.mono - self.base_mono) // 1000)

    def call_at(self, when: int, callback: Callable[[], None]) -> _Handle:
        handle = _Handle(when, callback)
        heapq.heappush(self._heap, (when, next(self._seq), handle))
        return handle

    def pending(self) -> list[int]:
        return sorted(h.when - self.base_mono for _, _, h in self._heap if not h.cancelled)

    async def advance(self, ns: int, manager: Any) -> None:
        target = self.mono + ns
        while True:
            await manager.idle()
            while self._heap and self._heap[0][2].cancelled:
                heapq.heappop(self._heap)
            if not self._heap or self._heap[0][0] > target:
                break
            when, _, handle = heapq.heappop(self._heap)
            self.mono = max(self.mono, when)
            handle.callback()
        self.mono = target
        await manager.idle()

    def at(self, ns_from_start: int) -> int:
        """Elapsed ns since the clock was created."""
        return self.base_mono + ns_from_start


@dataclass
class RecordingLink:
    """An AgentLink that records callbacks; ``on_disconnect`` may hang the call up."""

    name: str = "test-agent"
    clock: Any = None
    fail_disconnects: int = 0
    alive: list[tuple[str, str]] | None = None
    disconnects: list[tuple[int, str, dict]] = field(default_factory=list)
    warnings: list[tuple[int, int]] = field(default_factory=list)
    on_disconnect: Callable[[Mapping[str, Any], str], Any] | None = None

    def _now(self) -> int:
        return self.clock.monotonic() if self.clock is not None else 0

    async def disconnect_session(self, event: Mapping[str, Any], reason: str) -> None:
        if self.fail_disconnects > 0:
            self.fail_disconnects -= 1
            raise ConnectionError("switch unreachable")
        self.disconnects.append((self._now(), reason, dict(event)))
        if self.on_disconnect is not None:
            result = self.on_disconnect(event, reason)
            if hasattr(result, "__await__"):
                await result

    async def warn_disconnect(self, event: Mapping[str, Any], remaining_ns: int) -> None:
        self.warnings.append((self._now(), remaining_ns))

    async def active_session_ids(self) -> list[tuple[str, str]] | None:
        return self.alive
