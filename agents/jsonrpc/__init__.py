"""CGRateS-compatible JSON-RPC API: TCP 2012, HTTP POST /jsonrpc 2080, BiRPC 2014.

Layers: ``codec`` (sans-IO streaming JSON values), ``dispatcher`` (method
names, aliases, error strings), ``connection``/``http``/``server`` (asyncio
adapters), ``link`` (BiRPC client as an engine AgentLink), ``methods`` (the
CGRateS services mapped onto the engine), ``service`` (composition-root entry).
"""
