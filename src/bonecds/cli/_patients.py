"""What `bonecds evaluate` accepts as a patient: a profile, a scenario (its profile and date) or
a FHIR R4 Bundle, from a file or stdin."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from bonecds.fhir.read import patient_from
from bonecds.profile.model import PatientProfile, read_structured, read_text
from bonecds.testing.scenarios import scenario_from

__all__ = ["read_patient"]


def read_patient(
    path: Path | None,
    text: str | None = None,
    as_of: dt.date | None = None,
    language: str = "en",
) -> tuple[PatientProfile, dt.date | None, list[str]]:
    """The patient, the scenario's date (else None) and the FHIR mapping notes (what was not
    used, and why) in the report's `language`; a Bundle's ages are taken at `as_of`."""
    source = str(path) if path is not None else "<stdin>"
    if text is None:
        assert path is not None
        text = read_text(path, source)
    data, doc = read_structured(text, source)
    if isinstance(data, dict) and "expect" in data and "resourceType" not in data:
        scenario, profile = scenario_from(data, path or Path("."), source)
        return profile, scenario.as_of, []
    mapping = patient_from(data, source, as_of, doc)
    return mapping.profile, None, mapping.texts(language)
