"""Quality tools for the knowledge base: clinical scenarios, regression runs with golden
snapshots and rule coverage, and seeded synthetic patients (never real data)."""
