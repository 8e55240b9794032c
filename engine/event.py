"""The one engine event every agent builds: CGRateS field names, normalised once.

Agents (through their templates) produce a plain mapping with CGRateS field
names; ``ChargingEvent.from_fields`` validates and normalises it so the rest of
the engine works with typed values (ns durations, aware datetimes, Decimal).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Mapping

from engine.units import format_duration, format_time, parse_duration, parse_time, to_decimal

# Standard CGRateS event field names (utils/consts.go).
CGRID = "CGRID"
RUN_ID = "RunID"
TOR = "ToR"
ORIGIN_ID = "OriginID"
ORIGIN_HOST = "OriginHost"
INITIAL_ORIGIN_ID = "InitialOriginID"
SOURCE = "Source"
REQUEST_TYPE = "RequestType"
TENANT = "Tenant"
CATEGORY = "Category"
ACCOUNT = "Account"
SUBJECT = "Subject"
DESTINATION = "Destination"
SETUP_TIME = "SetupTime"
ANSWER_TIME = "AnswerTime"
USAGE = "Usage"
LAST_USED = "LastUsed"
TOTAL_USAGE = "TotalUsage"
DISCONNECT_CAUSE = "DisconnectCause"
COST = "Cost"
COST_DETAILS = "CostDetails"
PDD = "PDD"
ROUTE = "Route"
PARTIAL = "Partial"

STANDARD_FIELDS = frozenset(
    {
        CGRID, RUN_ID, TOR, ORIGIN_ID, ORIGIN_HOST, INITIAL_ORIGIN_ID, SOURCE, REQUEST_TYPE,
        TENANT, CATEGORY, ACCOUNT, SUBJECT, DESTINATION, SETUP_TIME, ANSWER_TIME, USAGE,
        LAST_USED, TOTAL_USAGE, DISCONNECT_CAUSE, COST, COST_DETAILS, PDD, ROUTE, PARTIAL,
    }
)

# Types of record (ToR) and request types.
VOICE = "*voice"
DATA = "*data"
SMS = "*sms"
GENERIC = "*generic"
MONETARY = "*monetary"
PREPAID = "*prepaid"
PSEUDOPREPAID = "*pseudoprepaid"
POSTPAID = "*postpaid"
RATED = "*rated"
NONE = "*none"
REQUEST_TYPES = frozenset({PREPAID, PSEUDOPREPAID, POSTPAID, RATED, NONE, "*dynaprepaid"})


def cgrid(origin_id: str, origin_host: str) -> str:
    """CGRateS CGRID: lowercase hex SHA1 of OriginID + OriginHost (no separator)."""
    return hashlib.sha1((origin_id + origin_host).encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class EventDefaults:
    """Defaults applied to every event, from config (CGRateS ``general``/``sessions``)."""

    tenant: str = "cgrates.org"
    category: str = "call"
    request_type: str = PREPAID
    tor: str = VOICE


@dataclass(slots=True)
class ChargingEvent:
    """A normalised charging event. Durations are ns, times aware UTC, money Decimal."""

    tenant: str
    tor: str
    request_type: str
    category: str
    account: str
    subject: str
    destination: str
    origin_id: str = ""
    origin_host: str = ""
    cgrid: str = ""
    source: str = ""
    setup_time: datetime | None = None
    answer_time: datetime | None = None
    usage: int | None = None
    last_used: int | None = None
    total_usage: int | None = None
    disconnect_cause: str = ""
    cost: Decimal | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_fields(cls, fields: Mapping[str, Any], defaults: EventDefaults = EventDefaults(),
                    tenant: str | None = None) -> "ChargingEvent":
        """Build from a CGRateS-named mapping; missing Subject is Account, CGRID computed."""
        def text(name: str, default: str = "") -> str:
            value = fields.get(name)
            if value is None:
                return default
            return str(value)

        account = text(ACCOUNT)
        origin_id = text(ORIGIN_ID)
        origin_host = text(ORIGIN_HOST)
        usage = fields.get(USAGE)
        last_used = fields.get(LAST_USED)
        total_usage = fields.get(TOTAL_USAGE)
        cost = fields.get(COST)
        event = cls(
            tenant=text(TENANT) or tenant or defaults.tenant,
            tor=text(TOR) or defaults.tor,
            request_type=text(REQUEST_TYPE) or defaults.request_type,
            category=text(CATEGORY) or defaults.category,
            account=account,
            subject=text(SUBJECT) or account,
            destination=text(DESTINATION),
            origin_id=origin_id,
            origin_host=origin_host,
            cgrid=text(CGRID) or (cgrid(origin_id, origin_host) if origin_id else ""),
            source=text(SOURCE),
            setup_time=parse_time(fields.get(SETUP_TIME)),
            answer_time=parse_time(fields.get(ANSWER_TIME)),
            usage=None if usage is None or usage == "" else parse_duration(usage),
            last_used=None if last_used is None or last_used == "" else parse_duration(last_used),
            total_usage=None if total_usage is None or total_usage == "" else parse_duration(total_usage),
            disconnect_cause=text(DISCONNECT_CAUSE),
            cost=None if cost is None or cost == "" else to_decimal(cost),
            extra={k: v for k, v in fields.items() if k not in STANDARD_FIELDS},
        )
        return event

    @property
    def start_time(self) -> datetime | None:
        """Rating start: AnswerTime, falling back to SetupTime (CGRateS rule)."""
        return self.answer_time or self.setup_time

    def to_fields(self) -> dict[str, Any]:
        """Back to a CGRateS-named mapping (times RFC3339, durations ns)."""
        out: dict[str, Any] = dict(self.extra)
        out.update(
            {
                CGRID: self.cgrid,
                TENANT: self.tenant,
                TOR: self.tor,
                REQUEST_TYPE: self.request_type,
                CATEGORY: self.category,
                ACCOUNT: self.account,
                SUBJECT: self.subject,
                DESTINATION: self.destination,
                ORIGIN_ID: self.origin_id,
                ORIGIN_HOST: self.origin_host,
            }
        )
        if self.source:
            out[SOURCE] = self.source
        if self.setup_time is not None:
            out[SETUP_TIME] = format_time(self.setup_time)
        if self.answer_time is not None:
            out[ANSWER_TIME] = format_time(self.answer_time)
        if self.usage is not None:
            out[USAGE] = self.usage
        if self.disconnect_cause:
            out[DISCONNECT_CAUSE] = self.disconnect_cause
        return out

    def describe(self) -> str:
        """One line for logs."""
        usage = format_duration(self.usage) if self.usage is not None else "-"
        return (f"{self.tenant}:{self.account}->{self.destination} {self.tor} {self.request_type} "
                f"origin={self.origin_id}@{self.origin_host} usage={usage}")
