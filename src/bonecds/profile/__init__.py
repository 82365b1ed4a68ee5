"""Stage 1, the patient: the profile model, the fields rules may name, plausible ranges and the
histology vocabulary.

`model` (PatientProfile and its parts; parsing and reading YAML/JSON), `fields` (every value
the rules can name, as a path with its type and unit, derived values included), `plausibility`
(one table of plausible ranges per numeric field), `histology` (free text and ICD-O-3 codes ->
the classes the rules use). FHIR input becomes a profile in `bonecds.fhir`.
"""
