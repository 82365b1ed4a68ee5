"""Quality tools: clinical scenarios, regression runs with golden snapshots and rule coverage,
audit records and their replay, `bonecds rules sync` after a rule edit, and seeded synthetic
patients (never real data).

`scenarios`, `regression`, `audit`, `sync`, `synthetic`.
"""
