"""The HL7 CDS Hooks 2.0 service (docs/cds-hooks.md); needs the `service` extra.

`app` (the ASGI app: discovery, hooks, feedback, the language a request prefers), `auth` (JWT
checks, trusted issuers, replay protection). Private: `_models` (request, card, discovery,
feedback), `_cards` (report -> cards), `_words` (the cards' words in each report language),
`_feedback` (the feedback and replay database).
"""
