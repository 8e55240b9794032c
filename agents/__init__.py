"""Protocol agents: one package per protocol (sans-IO codec, asyncio adapter, template mapping)."""
