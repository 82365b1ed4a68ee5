"""Stage 1, the patient: the profile model, its plausible ranges and the histology vocabulary.

`model` (PatientProfile and its parts, parsing, reading YAML/JSON files), `plausibility` (one
table of plausible ranges per numeric field), `histology` (free text and ICD-O-3 codes -> the
classes the rules use). FHIR input becomes a profile in `bonecds.fhir`.
"""
