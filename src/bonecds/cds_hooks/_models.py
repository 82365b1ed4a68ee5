"""CDS Hooks 2.0 models (request, card, discovery, feedback) and prefetch states.

Models mirror the 2.0.1 spec and the 3.0-ballot invariants (cds-r-1, cds-resp-1..3, cds-fb-1..3;
shared/standards/cds-hooks-checklist.md). Output is serialised without `null`, `""`, `[]` or
`{}` (G-2); only `"cards": []` may be empty. Turning a report into cards is
`bonecds.cds_hooks._cards`.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "PREFETCH",
    "REQUIRED_PREFETCH",
    "SUMMARY_LIMIT",
    "Action",
    "Card",
    "CdsRequest",
    "CdsResponse",
    "Coding",
    "Feedback",
    "Link",
    "OrderSelectContext",
    "OrderSignContext",
    "PatientViewContext",
    "Prefetched",
    "ServiceDescriptor",
    "Source",
    "Suggestion",
    "bundle_resources",
    "classify_prefetch",
    "resolve_template",
]

SUMMARY_LIMIT = 140  # characters (code points), not bytes: 2.0 §Card Attributes
_REFERENCE = r"^[\d\w]+/[\d\w\-.]+$"  # ord-1 (hook library logical models)
_FHIR_ID = r"^[A-Za-z0-9\-.]{1,64}$"


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _In(BaseModel):
    # Strict types (no "1" -> 1), unknown members ignored: clients may add fields (G-3).
    model_config = ConfigDict(extra="ignore", frozen=True, strict=True)


class Coding(_Out):
    system: str
    code: str
    display: str | None = None


class Link(_Out):
    label: str
    url: str
    type: Literal["absolute", "smart"]
    appContext: str | None = None

    @model_validator(mode="after")
    def _app_context_only_smart(self) -> Link:  # cds-resp-3
        if self.appContext is not None and self.type != "smart":
            raise ValueError("appContext is only allowed on smart links")
        return self


class Source(_Out):
    label: str = Field(min_length=1)
    url: str | None = Field(default=None, pattern=r"^https?://")
    icon: str | None = Field(default=None, pattern=r"^https?://")
    topic: Coding | None = None


class Action(_Out):
    type: Literal["create", "update", "delete"]
    description: str = Field(min_length=1)
    resource: dict[str, Any] | None = None
    resourceId: str | None = Field(default=None, pattern=_REFERENCE)

    @model_validator(mode="after")
    def _target(self) -> Action:  # cds-resp-2, cds-resp-5
        if self.type == "delete" and self.resourceId is None:
            raise ValueError("a delete action names resourceId")
        if self.type != "delete" and self.resource is None:
            raise ValueError("create and update actions carry the whole resource")
        return self


class Suggestion(_Out):
    label: str = Field(min_length=1)
    uuid: str | None = None
    isRecommended: bool | None = None
    actions: list[Action] = []


class Card(_Out):
    uuid: str | None = None
    summary: str = Field(min_length=1, max_length=SUMMARY_LIMIT - 1)
    detail: str | None = None
    indicator: Literal["info", "warning", "critical"]
    source: Source
    suggestions: list[Suggestion] = []
    selectionBehavior: Literal["at-most-one", "any"] | None = None
    overrideReasons: list[Coding] = []
    links: list[Link] = []

    @model_validator(mode="after")
    def _card_rules(self) -> Card:
        if self.suggestions and self.selectionBehavior is None:
            raise ValueError("selectionBehavior is required with suggestions")  # C-6
        recommended = sum(bool(s.isRecommended) for s in self.suggestions)
        if self.selectionBehavior == "at-most-one" and recommended > 1:
            raise ValueError("at most one suggestion may be recommended")  # cds-resp-1
        if any(not reason.display for reason in self.overrideReasons):
            raise ValueError("every override reason needs a display")  # C-10
        return self


class CdsResponse(_Out):
    cards: list[Card]

    def to_data(self) -> dict[str, Any]:
        """JSON-ready data with every empty or null member removed (G-2)."""
        return {"cards": [_prune(card.model_dump(mode="json")) for card in self.cards]}


class ServiceDescriptor(_Out):
    hook: str
    id: str
    title: str
    description: str
    prefetch: dict[str, str] | None = None
    usageRequirements: str | None = None


class FhirAuthorization(_In):
    access_token: str = Field(min_length=1)
    token_type: Literal["Bearer"]
    expires_in: int
    scope: str
    subject: str
    patient: str | None = None


class CdsRequest(_In):
    hook: str = Field(min_length=1)
    hookInstance: str = Field(min_length=1, max_length=128)
    fhirServer: str | None = Field(default=None, pattern=r"^https?://")
    fhirAuthorization: FhirAuthorization | None = None
    context: dict[str, Any]
    prefetch: dict[str, Any] | None = None
    extension: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _server_with_token(self) -> CdsRequest:  # cds-r-1
        if self.fhirAuthorization is not None and self.fhirServer is None:
            raise ValueError("fhirAuthorization requires fhirServer")
        return self


class PatientViewContext(_In):
    userId: str = Field(pattern=_REFERENCE)
    patientId: str = Field(pattern=_FHIR_ID)
    encounterId: str | None = None


class OrderSignContext(PatientViewContext):
    draftOrders: dict[str, Any]

    @model_validator(mode="after")
    def _bundle(self) -> OrderSignContext:
        if self.draftOrders.get("resourceType") != "Bundle":
            raise ValueError("draftOrders must be a FHIR Bundle")
        if not isinstance(self.draftOrders.get("entry", []), list):
            raise ValueError("draftOrders.entry must be a list")
        return self


class OrderSelectContext(OrderSignContext):
    selections: list[str] = Field(min_length=1)

    @model_validator(mode="after")
    def _references(self) -> OrderSelectContext:
        if not all(re.match(_REFERENCE, item) for item in self.selections):
            raise ValueError("selections must be references such as MedicationRequest/103")
        return self


class OverrideReason(_In):
    reason: Coding | None = None
    userComment: str | None = None

    @model_validator(mode="after")
    def _something(self) -> OverrideReason:  # cds-fb-3
        if self.reason is None and self.userComment is None:
            raise ValueError("overrideReason needs a reason or a userComment")
        return self


class AcceptedSuggestion(_In):
    id: str = Field(min_length=1)


class FeedbackItem(_In):
    card: str = Field(min_length=1)
    outcome: Literal["accepted", "overridden"]
    acceptedSuggestions: list[AcceptedSuggestion] | None = None
    overrideReason: OverrideReason | None = None
    outcomeTimestamp: str = Field(
        pattern=r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$"
    )

    @model_validator(mode="after")
    def _consistent(self) -> FeedbackItem:  # cds-fb-1, cds-fb-2
        if self.outcome == "accepted" and not self.acceptedSuggestions:
            raise ValueError("accepted feedback lists acceptedSuggestions")
        if self.outcome == "accepted" and self.overrideReason is not None:
            raise ValueError("overrideReason belongs to overridden feedback")
        dt.datetime.fromisoformat(self.outcomeTimestamp.replace("Z", "+00:00"))
        return self


class Feedback(_In):
    feedback: list[FeedbackItem] = Field(min_length=1)


# Prefetch templates (2.0 §Prefetch Template; terminology.md §7), restricted to the query
# subset of checklist P-4, with `_sort=-date` rather than the spec example's `sort:desc` (P-5).
# Every code the mapping reads (bonecds.fhir.codes), and the codes it reports as not used, so
# that a dropped value is visible rather than never fetched (creatinine and calcium in blood as
# Synthea codes them, eGFR, a laboratory-corrected calcium).
_LAB_CODES = "2160-0 14682-9 77140-2 2164-2 17861-6 2000-8 1994-3 1995-0 17864-0 1751-7"
_LAB_CODES += " 6768-6 2039-6 29463-7 1989-3 19123-9 2777-1"
_LAB_CODES += " 33914-3 62238-1 98979-8 98980-6 29265-6 38483-4 49765-1"
_LOINC, _SNOMED = "http://loinc.org", "http://snomed.info/sct"
# mCODE: disease status, genomic variants, ER/PR/HER2, TNM stage groups (fhir_codes tables).
_CANCER_CODES = [f"{_LOINC}|{c}" for c in ("97509-4", "69548-6", "85337-4", "85339-0", "48676-1")]
_CANCER_CODES += [f"{_SNOMED}|{c}" for c in ("399390009", "399537006", "399588009")]
_PATIENT = "patient={{context.patientId}}"


def _observations(codes: list[str]) -> str:
    return f"Observation?{_PATIENT}&code={','.join(codes)}&_sort=-date"


PREFETCH: dict[str, str] = {
    "patient": "Patient/{{context.patientId}}",
    "conditions": f"Condition?{_PATIENT}",
    "labs": _observations([f"{_LOINC}|{code}" for code in _LAB_CODES.split()]),
    "performance": _observations([f"{_LOINC}|89247-1", f"{_LOINC}|89243-0"]),  # ECOG, Karnofsky
    "pregnancy": f"Observation?{_PATIENT}&code={_LOINC}|82810-3&_sort=-date&_count=1",
    "cancer": _observations(_CANCER_CODES),
    "medications": f"MedicationRequest?{_PATIENT}",
    "medicationStatements": f"MedicationStatement?{_PATIENT}",
    "procedures": f"Procedure?{_PATIENT}",
}
# Without these the checks cannot run: absent and not fetchable -> 412 (2.0 §Prefetch Template).
REQUIRED_PREFETCH = ("patient", "conditions", "labs", "medications")

PrefetchState = Literal["data", "fetched", "null", "empty", "absent", "error", "partial"]


@dataclass(frozen=True)
class Prefetched:
    """One prefetch key: absent, null and an empty Bundle stay three states (checklist R-4)."""

    state: PrefetchState
    resources: tuple[dict[str, Any], ...] = ()

    @property
    def usable(self) -> bool:
        return self.state in ("data", "fetched", "null", "empty")


def classify_prefetch(value: Any, present: bool) -> Prefetched:
    """The state of one prefetch value; an OperationOutcome counts as absent (R-5)."""
    if not present:
        return Prefetched("absent")
    if value is None:
        return Prefetched("null")
    if not isinstance(value, dict) or not isinstance(value.get("resourceType"), str):
        raise ValueError("not a FHIR resource or null")
    if value["resourceType"] == "OperationOutcome":
        return Prefetched("error")
    if value["resourceType"] != "Bundle":
        return Prefetched("data", (value,))
    links, entries = value.get("link", []), value.get("entry", [])
    if not isinstance(links, list) or not isinstance(entries, list):
        raise ValueError("Bundle.link and Bundle.entry must be lists")
    if any(isinstance(link, dict) and link.get("relation") == "next" for link in links):
        return Prefetched("partial", bundle_resources(value))  # never read as complete
    resources = bundle_resources(value)
    return Prefetched("data", resources) if resources else Prefetched("empty")


def bundle_resources(bundle: dict[str, Any]) -> tuple[dict[str, Any], ...]:
    """The entries' resources, without the OperationOutcomes a search may add."""
    entries = bundle.get("entry", [])
    resources = [e.get("resource") for e in entries if isinstance(e, dict)]
    return tuple(
        r for r in resources if isinstance(r, dict) and r.get("resourceType") != "OperationOutcome"
    )


def resolve_template(template: str, context: PatientViewContext) -> str:
    """Replace the tokens bonecds uses; patientId is an id by the context's pattern."""
    return template.replace("{{context.patientId}}", context.patientId)


def _prune(value: Any) -> Any:
    if isinstance(value, dict):
        pruned = {k: _prune(v) for k, v in value.items()}
        return {k: v for k, v in pruned.items() if v not in (None, "", [], {})}
    if isinstance(value, list):
        return [_prune(v) for v in value]
    return value
