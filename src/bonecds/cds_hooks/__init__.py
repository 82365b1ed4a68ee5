"""The HL7 CDS Hooks 2.0 service (docs/cds-hooks.md); needs the `service` extra.

`models` (request, card, discovery, feedback), `cards` (report -> cards), `auth` (JWT checks,
trusted issuers, replay protection), `feedback` (the service's database), `app` (the ASGI app).
"""
