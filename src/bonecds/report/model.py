"""The Report model: the output contract of docs/contract.md, field for field.

Every list is always present (empty when nothing applies) and ordered deterministically, so the
same input and rules serialise to the same bytes.
"""

from __future__ import annotations

import json
import math
import typing
from collections.abc import Callable
from typing import Any, Literal

import orjson
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
    "mapping_note",
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


def mapping_note(text: str) -> dict[str, Any]:
    """A FHIR mapping note (what the input held that was not used, and why) as the data of a
    report's NoteOut: the CLI, the audit record and batch add them alike."""
    return {"text": f"FHIR: {text}", "applies_to": [], "rules": ["fhir-mapping"], "citations": []}


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
        return _canonical_json(self, lambda: self.model_dump(mode="json"))


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
        omit = ("explanations",) if self.explanations is None else ()
        return _canonical_json(self, self.to_data, omit)


def _canonical_json(
    model: _Model, to_data: Callable[[], dict[str, Any]], omit: tuple[str, ...] = ()
) -> str:
    """`json.dumps(to_data(), indent=2, sort_keys=True, ensure_ascii=False)` and a
    newline, written by orjson from the models themselves when that gives the same bytes."""
    try:
        fields = _plain_fields(model)
        if omit:
            fields = {key: value for key, value in fields.items() if key not in omit}
        return orjson.dumps(fields, default=_plain_fields, option=_CANONICAL).decode()
    except TypeError:  # what orjson would write otherwise than the json module
        return json.dumps(to_data(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


# The fast way: orjson writes the same bytes as json.dumps(indent=2,
# sort_keys=True, ensure_ascii=False) for str, int, bool, None, lists, dicts with str keys and
# the floats below; it raises (so the json module writes it) for integers beyond 64 bits, lone
# surrogates and non-str keys. Everything else goes to `_plain_fields`, which refuses it too.
_CANONICAL = (
    orjson.OPT_INDENT_2
    | orjson.OPT_APPEND_NEWLINE
    | orjson.OPT_SORT_KEYS
    | orjson.OPT_PASSTHROUGH_DATACLASS
    | orjson.OPT_PASSTHROUGH_DATETIME
    | orjson.OPT_PASSTHROUGH_SUBCLASS
)
# Report models -> their fields that may hold floats, each with whether it is declared a float
# (pydantic writes an int there as a float: 1 as 1.0) rather than any value.
_MODELS: dict[type, tuple[tuple[str, bool], ...]] = {}


def _plain_fields(item: Any) -> dict[str, Any]:
    """A report model's fields as orjson writes them, when its values are plain JSON data."""
    checked = _MODELS.get(item.__class__)
    if checked is None:
        raise TypeError
    fields: dict[str, Any] = item.__dict__
    for name, declared_float in checked:
        value = fields[name]
        kind = value.__class__
        if declared_float and value is not None and kind is not float:
            raise TypeError
        if kind not in _ATOMS and not _plain(value):
            raise TypeError
    return fields


_ATOMS = frozenset((str, int, bool, type(None)))  # always plain: most values, checked first


def _plain(value: Any) -> bool:
    """JSON data that orjson writes as json.dumps does: a float in exponent form (below 1e-4)
    or NaN/Infinity differs (orjson: 0.00001, null; json: 1e-05, NaN), so it is not plain."""
    kind = value.__class__
    if kind is float:
        return value == 0.0 or (math.isfinite(value) and abs(value) >= 1e-4)
    if kind is str or kind is int or kind is bool or value is None or kind in _MODELS:
        return True
    if kind is list or kind is tuple:
        return all(_plain(item) for item in value)
    if kind is dict:
        return all(k.__class__ is str and _plain(v) for k, v in value.items())
    return False


def _may_hold_float(annotation: Any) -> bool:
    if annotation is float or annotation is Any:
        return True
    if typing.get_origin(annotation) is Literal:
        return False
    return any(_may_hold_float(arg) for arg in typing.get_args(annotation))


def _report_models(*roots: type[BaseModel]) -> set[type[BaseModel]]:
    """Every model a report or a why-not answer can hold, found from their fields (a listing
    of `_Model`'s subclasses misses Dose and Schedule, which extend the rule file's)."""
    found: set[type[BaseModel]] = set()
    pending = list(roots)
    while pending:
        model = pending.pop()
        if model in found:
            continue
        found.add(model)
        for info in model.model_fields.values():
            pending += _models_in(info.annotation)
    return found


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in _models_in(arg)]


for _model in _report_models(Report, WhyNot):
    _MODELS[_model] = tuple(
        (name, info.annotation in (float, float | None))
        for name, info in _model.model_fields.items()
        if _may_hold_float(info.annotation)
    )
