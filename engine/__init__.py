"""chargeway charging engine: rating, accounts, sessions, CDRs and storage.

The engine never imports an agent; agents call it through `engine.sessions`
and it calls them back only through `engine.agent_link.AgentLink`.
"""
