"""RADIUS agent: Access/Accounting server, CoA/Disconnect client (RFC 2865/2866/3579/5176).

Layers: ``codec`` (sans-IO packets), ``dictionary`` (pyrad-parsed FreeRADIUS
files), ``view`` (template view of a request), ``dedup`` (retransmission
cache), ``clients`` (secrets by CIDR), ``server`` (UDP socket drain),
``handler`` (request -> template -> engine -> reply), ``dynauth``
(Disconnect/CoA sender), ``service`` (composition).
"""
