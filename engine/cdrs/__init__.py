"""CDRs: the CGRateS-shaped record of every charged or missed call, stored and exported."""

from engine.cdrs.model import cdr_from_event, cdr_to_cgrates, filter_from_cgrates
from engine.cdrs.service import CdrService

__all__ = ["CdrService", "cdr_from_event", "cdr_to_cgrates", "filter_from_cgrates"]
