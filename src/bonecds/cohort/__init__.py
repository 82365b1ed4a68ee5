"""Cohorts: `bonecds batch` over NDJSON profiles or FHIR directories, resumable.

`run` (read records, write results in input order, checkpoints), `output` (what is written per
patient: full report, summary row, HTML), `runners` (where chunks are evaluated: this process,
local worker processes, or Dask). Private: `_types` (what passes between them).
"""
