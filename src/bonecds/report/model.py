"""The Report model: the output contract of docs/contract.md, field for field.

Every list is always present (empty when nothing applies) and ordered deterministically, so the
same input and rules serialise to the same bytes.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from bonecds.knowledge import model as knowledge

__all__ = [
    "Candidate",
    "CautionOut",
    "CitationOut",
    "ConditionLine",
    "NoteOut",
    "PatientValue",
    "RankedItem",
    "Report",
    "RuleExplanation",
    "WhyNot",
]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CitationOut(_Model):
    """A resolved citation: the bibliography key, its title, and where in it to look."""

    source: str
    title: str
    locator: str = ""


class PatientValue(_Model):
    """A profile value a rule read, as the rule saw it (`null` when unknown)."""

    field: str
    value: Any
    unit: str = ""


class Dose(knowledge.Dose):
    """A rule's dose as the report gives it, with the rules that set it."""

    rules: list[str]


class Schedule(knowledge.Schedule):
    """A rule's schedule as the report gives it, with the rules that set it."""

    rules: list[str]


class RankedItem(_Model):
    id: str
    label: str
    kind: Literal["emergency", "option"]
    rank: int
    score: int
    purpose: str
    strength: str
    evidence: str
    rationale: str
    rules: list[str]
    citations: list[CitationOut]
    cautions: list[str]
    conditional_on: list[str]
    dose: Dose | None = None
    schedule: Schedule | None = None
    patient_values: list[PatientValue]
    score_note: str = ""


class Reason(_Model):
    rule: str
    text: str
    patient_values: list[PatientValue]
    citations: list[CitationOut]


class Contraindicated(_Model):
    id: str
    label: str
    reasons: list[Reason]


class CautionOut(_Model):
    id: str
    text: str
    applies_to: list[str]
    rules: list[str]
    citations: list[CitationOut]
    patient_values: list[PatientValue]


class DataRequest(_Model):
    field: str
    reason: str
    gates: list[str]
    rules: list[str]
    urgent: bool = False


class ContextItem(_Model):
    id: str
    label: str
    rationale: str
    rules: list[str]
    citations: list[CitationOut]


class NoteOut(_Model):
    text: str
    applies_to: list[str]
    rules: list[str]
    citations: list[CitationOut]


class DerivedOut(_Model):
    """A value bonecds computed, shown with its method and inputs."""

    field: str
    value: float
    unit: str
    method: str
    inputs: dict[str, Any]


class ConditionLine(_Model):
    """One traced condition: its plain-word text, the patient's value, and met/not met/unknown."""

    depth: int
    text: str
    status: Literal["met", "not met", "unknown"]
    value: Any = None


class RuleExplanation(_Model):
    rule: str
    branch: str
    title: str
    conditions: list[ConditionLine]


class Candidate(_Model):
    """A rule branch that proposes the option asked about, and how its conditions fared."""

    rule: str
    branch: str
    title: str
    status: Literal["fired", "not met", "unknown"]
    conditions: list[ConditionLine]


class WhyNot(_Model):
    """Why an option was, or was not, proposed for this patient."""

    option: str
    label: str
    outcome: Literal["ranked", "contraindicated", "not proposed"]
    reasons: list[Reason]
    candidates: list[Candidate]

    def to_json(self) -> str:
        data = self.model_dump(mode="json")
        return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


class FiredRule(_Model):
    """A rule branch that fired, for audit and coverage (conditional when data are missing)."""

    rule: str
    branch: str
    conditional_on: list[str]


class Report(_Model):
    """The result of evaluating one patient against one knowledge base."""

    disclaimer: str
    language: Literal["en", "zh"] = "en"
    as_of: str
    knowledge_version: str
    knowledge_digest: str = ""  # sha256 of the knowledge base's files (_digests.py)
    input_digest: str = ""  # sha256 of the profile as evaluated (_digests.py)
    engine_version: str
    patient_id: str | None
    ranked: list[RankedItem]
    contraindicated: list[Contraindicated]
    cautions: list[CautionOut]
    data_requests: list[DataRequest]
    context: list[ContextItem]
    notes: list[NoteOut]
    derived: list[DerivedOut]
    rules_fired: list[FiredRule]
    explanations: list[RuleExplanation] | None = None

    def to_data(self) -> dict[str, Any]:
        """Plain JSON-ready data; `explanations` only when they were asked for."""
        data = self.model_dump(mode="json")
        if self.explanations is None:
            del data["explanations"]
        return data

    def to_json(self) -> str:
        """Canonical JSON: sorted keys, two-space indent, final newline."""
        return json.dumps(self.to_data(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
