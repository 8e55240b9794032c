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

from engine.memo import remember
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
    """CGRateS CGRID: lowercase hex SHA1 of OriginID + OriginHost (no separator).

    Every event of a call (authorize, start, end; each charging run) names the same call,
    and a SHA1 costs more than the rest of parsing an event's text fields: the digest of
    a recent call is remembered (bounded; cleared when full, like ``parse_time``'s texts).
    """
    key = origin_id + origin_host
    digest = _CGRIDS.get(key)
    if digest is None:
        digest = remember(_CGRIDS, _CGRIDS_MAX, key, hashlib.sha1(key.encode()).hexdigest())
    return digest


_CGRIDS: dict[str, str] = {}
_CGRIDS_MAX = 4096


def _text(value: Any) -> str:
    """A field that is not a str: None (absent) is "", anything else its ``str``."""
    return "" if value is None else str(value)


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
        """Build from a CGRateS-named mapping; missing Subject is Account, CGRID computed.

        Runs several times per session (authorize, initiate, terminate, per charging run), so
        it reads each field once and leaves str values as they are (``str(x)`` only otherwise).
        """
        get = fields.get
        # each field inline (a str stays as it is; None is "", others str()): a helper call
        # per field was a quarter of this function
        tenant_ = get(TENANT)
        tor = get(TOR)
        request_type = get(REQUEST_TYPE)
        category = get(CATEGORY)
        account = get(ACCOUNT)
        subject = get(SUBJECT)
        destination = get(DESTINATION)
        origin_id = get(ORIGIN_ID)
        origin_host = get(ORIGIN_HOST)
        given_cgrid = get(CGRID)
        source = get(SOURCE)
        disconnect_cause = get(DISCONNECT_CAUSE)
        if tenant_.__class__ is not str:
            tenant_ = _text(tenant_)
        if tor.__class__ is not str:
            tor = _text(tor)
        if request_type.__class__ is not str:
            request_type = _text(request_type)
        if category.__class__ is not str:
            category = _text(category)
        if account.__class__ is not str:
            account = _text(account)
        if subject.__class__ is not str:
            subject = _text(subject)
        if destination.__class__ is not str:
            destination = _text(destination)
        if origin_id.__class__ is not str:
            origin_id = _text(origin_id)
        if origin_host.__class__ is not str:
            origin_host = _text(origin_host)
        if given_cgrid.__class__ is not str:
            given_cgrid = _text(given_cgrid)
        if source.__class__ is not str:
            source = _text(source)
        if disconnect_cause.__class__ is not str:
            disconnect_cause = _text(disconnect_cause)
        usage = get(USAGE)
        last_used = get(LAST_USED)
        total_usage = get(TOTAL_USAGE)
        cost = get(COST)
        setup_time = get(SETUP_TIME)
        answer_time = get(ANSWER_TIME)
        return cls(
            tenant_ or tenant or defaults.tenant,
            tor or defaults.tor,
            request_type or defaults.request_type,
            category or defaults.category,
            account,
            subject or account,
            destination,
            origin_id,
            origin_host,
            given_cgrid or (cgrid(origin_id, origin_host) if origin_id else ""),
            source,
            None if setup_time is None else parse_time(setup_time),
            None if answer_time is None else parse_time(answer_time),
            None if usage is None or usage == "" else parse_duration(usage),
            None if last_used is None or last_used == "" else parse_duration(last_used),
            None if total_usage is None or total_usage == "" else parse_duration(total_usage),
            disconnect_cause,
            None if cost is None or cost == "" else to_decimal(cost),
            {k: v for k, v in fields.items() if k not in STANDARD_FIELDS},
        )

    @property
    def start_time(self) -> datetime | None:
        """Rating start: AnswerTime, falling back to SetupTime (CGRateS rule)."""
        return self.answer_time or self.setup_time

    def to_fields(self) -> dict[str, Any]:
        """Back to a CGRateS-named mapping (times RFC3339, durations ns)."""
        # one dict display (the extras, then the standard names): not a copy of the extras
        # updated from a second, temporary dict
        out: dict[str, Any] = {
            **self.extra,
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


_ABSENT = object()

# What ``to_fields`` writes for each standard name, in its order (``_ABSENT``: left out),
# for comparing one field of two events without building either dict.
_FIELD_OF: dict[str, Any] = {
    CGRID: lambda e: e.cgrid,
    TENANT: lambda e: e.tenant,
    TOR: lambda e: e.tor,
    REQUEST_TYPE: lambda e: e.request_type,
    CATEGORY: lambda e: e.category,
    ACCOUNT: lambda e: e.account,
    SUBJECT: lambda e: e.subject,
    DESTINATION: lambda e: e.destination,
    ORIGIN_ID: lambda e: e.origin_id,
    ORIGIN_HOST: lambda e: e.origin_host,
    SOURCE: lambda e: e.source or _ABSENT,
    SETUP_TIME: lambda e: _ABSENT if e.setup_time is None else format_time(e.setup_time),
    ANSWER_TIME: lambda e: _ABSENT if e.answer_time is None else format_time(e.answer_time),
    USAGE: lambda e: _ABSENT if e.usage is None else e.usage,
    DISCONNECT_CAUSE: lambda e: e.disconnect_cause or _ABSENT,
}
# (name, getter) of the standard names of ``to_fields``, in its order; a getter answers
# ``ABSENT`` for a field ``to_fields`` leaves out.
FIELD_GETTERS = tuple(_FIELD_OF.items())
ABSENT = _ABSENT
