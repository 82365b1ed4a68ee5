"""FHIR R4 and mCODE input: resources -> a patient profile, and draft orders for order checks.

`read` (Patient, Condition, Observation, Medication*, Procedure -> profile plus notes on what
could not be used), `notes` (those notes in each report language), `codes` (code systems and
tables), `orders` (the bone-modifying agents in draft orders).
"""
