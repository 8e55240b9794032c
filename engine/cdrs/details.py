"""CDR CostDetails as ready-made JSON text, so the EventCost is not parsed and encoded again.

The rater keeps the call-independent part of an EventCost (Usage, Cost, Charges, Rating,
RatingFilters, Rates, Timings) as JSON bytes on its shared price (``Priced.rendered``).
``build_event_cost`` parses those bytes into a dict for every CDR, and the SQLite writer
then encodes that dict again — 1-2 KB of JSON parsed and rendered per terminate, half of
it on the writer thread holding the GIL. ``cost_details`` instead re-encodes the fixed part
once per rendering, with the writer's own encoder, and joins it behind the three
per-call keys: the row carries a ``msgspec.Raw`` whose bytes are exactly what the writer
would have produced from the dict, and the writer copies them as they are.

Consumers that need the dict (``cdr_to_cgrates``: exporters' queue payloads) read it back
with ``details_value``.
"""

from __future__ import annotations

from typing import Any

import msgspec
import orjson

from engine.memo import remember
from engine.units import format_time

# The SQLite writer's CDR JSON encoder settings (engine.storage.sqlite._json_enc): bytes
# made here must equal what it makes of the parsed dict.
_ENC = msgspec.json.Encoder(decimal_format="number")
_encode = _ENC.encode

# Encoded fixed parts by rendering; a price's rendering is one bytes object, so a lookup
# hashes it once. Bounded: a long-running engine sees many call shapes.
_TAILS: dict[bytes, bytes] = {}
_TAILS_MAX = 4096


def cost_details(result: Any, cgrid: str, run_id: str) -> Any:
    """The EventCost of a ``CostResult`` for a CDR: raw JSON when its price was rendered
    before, else the dict ``to_event_cost`` renders (that first call stores the rendering)."""
    priced = getattr(result, "priced", None)
    rendered = getattr(priced, "rendered", None)
    if not rendered or not rendered[0]:
        return result.to_event_cost(cgrid=cgrid, run_id=run_id)
    body = rendered[0]
    tail = _TAILS.get(body)
    if tail is None:
        tail = _tail(body)
    return msgspec.Raw(b'{"CGRID":' + _encode(cgrid) + b',"RunID":' + _encode(run_id)
                       + b',"StartTime":' + _encode(format_time(result.request.start)) + tail)


def _tail(body: bytes) -> bytes:
    """Everything after StartTime, in build_event_cost's key order, encoded as the writer would."""
    usage, cost, charges, rating, filters, rates, timings = orjson.loads(body)
    tail = b"".join((
        b',"Usage":', _encode(usage), b',"Cost":', _encode(cost), b',"Charges":', _encode(charges),
        b',"AccountSummary":null,"Accounting":{},"Rating":', _encode(rating),
        b',"RatingFilters":', _encode(filters), b',"Rates":', _encode(rates),
        b',"Timings":', _encode(timings), b"}",
    ))
    return remember(_TAILS, _TAILS_MAX, body, tail)


def details_value(value: Any) -> Any:
    """CostDetails as a JSON value (dict) whether it is held raw or already parsed."""
    if isinstance(value, msgspec.Raw):
        return orjson.loads(memoryview(value))
    return value
