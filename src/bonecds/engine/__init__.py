"""Stage 3, the engine: a profile's facts matched against the compiled rules.

`facts` (profile -> one flat fact plus derived values), `compile` (rule models -> durable_rules
ruleset definitions, partitioned), `firing` (what fired: plain data, no engine needed), `durable`
(the only module that imports durable_rules).
"""
