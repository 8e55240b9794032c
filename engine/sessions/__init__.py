"""Sessions: the engine API agents call (authorize/initiate/update/terminate/CDR)."""
