"""Stage 4, the report: firings ranked into the output contract and rendered.

`model` (the Report, field for field as docs/contract.md), `rank` (emergencies first, options by
score, contraindications apart), `explain` (conditions in plain words, why / why-not),
`catalogue` (every rule in plain words), `render/` (text, Markdown, HTML, JSON, YAML).
"""
