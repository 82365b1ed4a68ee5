"""Stage 2, the knowledge base: `rules/*.yaml` read, checked and described.

`model` (rules, conditions, effects, sources, vocabulary), `load` (files -> a KnowledgeBase or a
RuleError listing every problem), `_source` (one file's YAML with positions for diagnostics),
`conditions` (YAML conditions -> condition trees), `checks` (cross-file references), `lint`
(logic warnings), `schema` (JSON Schemas for editors), `catalogue` (the rules in plain words),
`cache` (compiled knowledge bases kept per user), `sync` (`bonecds rules sync`).
"""
