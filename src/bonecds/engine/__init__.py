"""Stage 3, the engine: a profile's facts matched against the compiled rules.

`facts` (profile -> one flat fact, with derived values), `compile` (rule models -> durable_rules
ruleset definitions, partitioned over rulesets), `durable` (runs them: the only module that
imports durable_rules), `firing` (what fired, as plain data: reading it needs no engine).
"""
