"""Stage 4, the report: firings ranked into the output contract and rendered.

`model` (the Report, field for field as docs/contract.md), `rank` (emergencies first, options by
score, contraindications apart), `explain` (conditions in plain words, why / why-not), `i18n`
(report texts in the reader's language), `audit` (replayable records), `render/` (text,
Markdown, HTML, JSON, YAML).
"""
