"""Stage 2, the knowledge base: `rules/*.yaml` read, checked and cached.

`model` (rules, conditions, effects, sources, settings), `load` (files -> a KnowledgeBase, or a
RuleError listing every problem), `conditions` (YAML conditions -> condition trees), `lint`
(logic warnings), `i18n` (the texts in each report language), `schema` (JSON Schemas for
editors), `cache` (compiled knowledge bases kept per user). Private: `_source` (one file's
YAML with positions), `_checks` (cross-file references and translations).
"""
