"""FHIR R4 -> patient profile from Patient, Condition, Observation, Medication*, Procedure.

Each resource is validated on its own with the `fhir.resources.R4B` models (8.x has no R4 package;
R4B equals R4 for these resources, shared/standards/python-packages.md), never the whole Bundle:
one bad entry of a type bonecds does not read must not reject the rest (cds-hooks-checklist R-10).
Codes match on (system, code), never on the code alone (terminology.md §1); the code tables
are in `bonecds.fhir_codes`, and draft orders (order hooks) are read by `bonecds.fhir_orders`.
The mapping table with the verification status of every code is in docs/cds-hooks.md; codes
marked U there were written from knowledge and need checking before a rule depends on them.

Absent data stays unknown (`None`): no Observation is no value, no pregnancy record is not "not
pregnant" (terminology.md §7). Messages name resources and fields, never patient values.
"""

from __future__ import annotations

import datetime as dt
import typing
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from bonecds.errors import ProfileError
from bonecds.fhir_codes import (
    BMA_AGENTS,
    BONE_SITES,
    CONDITION_CODES,
    CURRENT_STATUS,
    HGNC,
    ICDO3,
    LOINC,
    LOINC_LABS,
    LONG_BONES,
    MORPHOLOGY,
    NOT_USED_LOINC,
    OBSERVATION_DONE,
    PRIMARY_SITES,
    READ_TYPES,
    REFERENCE_LIMITS,
    SNOMED,
    UCUM,
    UNITS,
    code_of,
    coded,
    codes_in,
    identify_drug,
    is_dental_procedure,
)
from bonecds.profile import PatientProfile, PrimarySite, parse_profile

_PROFILE_SITES = typing.get_args(PrimarySite)


@dataclass
class FhirMapping:
    """A profile mapped from FHIR, with remarks (no values) and the date behind each field."""

    profile: PatientProfile
    notes: list[str] = field(default_factory=list)
    dates: dict[str, str] = field(default_factory=dict)


def bundle_to_profile(
    bundle: dict[str, Any], source: str = "<bundle>", as_of: dt.date | None = None
) -> PatientProfile:
    """Map a FHIR R4 Bundle to a profile; ages and intervals are taken at `as_of`, else at
    `Bundle.timestamp`, else today.

    >>> bundle_to_profile({"resourceType": "Bundle", "type": "collection"}).sex is None
    True
    """
    entries = bundle.get("entry", [])
    if not isinstance(entries, list):
        raise ProfileError([f"{source}: Bundle.entry: must be a list"])
    resources = [e.get("resource") if isinstance(e, dict) else None for e in entries]
    parsed = parse_resources(resources, f"{source}: Bundle.entry")
    if as_of is None:
        as_of = _reference_date(bundle.get("timestamp"), source)
    has_meds = any(r["resourceType"] in CURRENT_STATUS for r in parsed)
    complete = frozenset({"medications"} if has_meds else ())
    return map_resources(parsed, as_of, complete=complete, source=source).profile


def parse_resources(raw: Iterable[Any], where: str) -> list[dict[str, Any]]:
    """Validate each resource bonecds reads with its R4B model; skip the other types."""
    parsed, problems = [], []
    for index, resource in enumerate(raw):
        label = f"{where}[{index}]"
        if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
            problems.append(f"{label}: resource: not a FHIR resource (no resourceType)")
        elif resource["resourceType"] in READ_TYPES:
            problems.extend(validation_problems(resource, label))
            parsed.append(resource)
    if problems:
        raise ProfileError(problems)
    return parsed


def validation_problems(resource: dict[str, Any], label: str) -> list[str]:
    """R4 problems of one resource, as `label ResourceType/id: field.path: message` lines."""
    from fhir.resources.R4B import get_fhir_model_class  # loads ~100 models: only when needed

    name = f"{resource['resourceType']}/{resource.get('id', '?')}"
    try:
        get_fhir_model_class(resource["resourceType"]).model_validate(resource)
    except ValidationError as error:
        # Built from loc and msg only: errors() also carries the input (patient data).
        return [
            f"{label} {name}: {'.'.join(str(p) for p in item['loc']) or 'resource'}: {item['msg']}"
            for item in error.errors(include_input=False, include_url=False)
        ]
    return []


def map_resources(
    resources: list[dict[str, Any]],
    as_of: dt.date,
    *,
    patient_id: str | None = None,
    complete: frozenset[str] = frozenset(),
    source: str = "FHIR",
) -> FhirMapping:
    """Map validated resources to a profile. `complete` names lists known to be whole
    (`medications`), so an absent agent there means "not on it" rather than unknown."""
    builder = _Builder(as_of, patient_id, source, index_resources(resources))
    for resource in sorted(resources, key=lambda r: (r["resourceType"], str(r.get("id", "")))):
        builder.add(resource)
    return builder.finish(complete)


class _Builder:
    """Collects profile fields from resources; later data never silently overwrites earlier."""

    def __init__(
        self, as_of: dt.date, patient_id: str | None, source: str, index: dict[str, Any]
    ) -> None:
        self.as_of, self.patient_id, self.source, self.index = as_of, patient_id, source, index
        self.data: dict[str, Any] = {}
        self.notes: list[str] = []
        self.dates: dict[str, str] = {}
        self.latest: dict[str, tuple[str, dict[str, Any]]] = {}
        self.primaries: set[str] = set()
        self.agents: set[str] = set()
        self.unrecognised: list[str] = []
        self.problems: list[str] = []

    def add(self, resource: dict[str, Any]) -> None:
        kind = resource["resourceType"]
        self._check_subject(resource)
        handler = getattr(self, f"_{kind.lower()}", None)
        if handler is not None:
            handler(resource)

    def _check_subject(self, resource: dict[str, Any]) -> None:
        # Guard against one patient's data reaching another's evaluation (prefetch mix-ups).
        ref = (resource.get("subject") or resource.get("patient") or {}).get("reference", "")
        own = resource.get("id") if resource["resourceType"] == "Patient" else None
        found = own or (ref.removeprefix("Patient/") if ref.startswith("Patient/") else None)
        if self.patient_id and found and found != self.patient_id:
            self.problems.append(f"{_name(resource)}: subject: refers to another patient")

    def _set(self, path: str, value: Any, date: str = "") -> None:
        node = self.data
        *parents, leaf = path.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
        if date:
            self.dates[path] = date

    def _patient(self, patient: dict[str, Any]) -> None:
        self._set("patient_id", patient.get("id"))
        if patient.get("gender") in ("female", "male"):
            self._set("sex", patient["gender"])
        elif patient.get("gender"):
            self.notes.append("Patient.gender is neither male nor female: sex left unknown")
        birth = patient.get("birthDate")
        if isinstance(birth, str) and len(birth) == 10:
            born = dt.date.fromisoformat(birth)
            years = self.as_of.year - born.year
            years -= (self.as_of.month, self.as_of.day) < (born.month, born.day)
            self._set("age_years", float(years), self.as_of.isoformat())
        elif birth:
            self.notes.append("Patient.birthDate is a partial date: age left unknown")

    def _condition(self, condition: dict[str, Any]) -> None:
        verification = code_of(condition.get("verificationStatus"))
        if verification in ("refuted", "entered-in-error"):
            return
        status = code_of(condition.get("clinicalStatus"))
        active = status in (None, "active", "recurrence", "relapse")
        concepts = {CONDITION_CODES[key] for key in coded(condition.get("code"), prefix=True)}
        morphology = _morphology(condition)
        sites = [
            BONE_SITES[c] for bs in condition.get("bodySite", []) for c in codes_in(bs, SNOMED)
        ]
        if "secondary" in concepts and sites:
            concepts.add("bone-mets")
        date = str(condition.get("onsetDateTime") or condition.get("recordedDate") or "")
        if concepts & PRIMARY_SITES or morphology:
            self.primaries.add(_primary_site(concepts & PRIMARY_SITES, morphology))
        if active and "bone-mets" in concepts:
            self._set("bone.metastases_present", True, date)
            named = sorted(set(self.data.get("bone", {}).get("sites", [])) | set(sites))
            if named:
                self._set("bone.sites", named)
            if LONG_BONES & set(sites):
                self._set("bone.long_bone_lesion", True, date)
        if active and "cord-compression" in concepts:
            self._set("neuro.cord_compression", True, date)
        if "mronj" in concepts:
            self._set("dental.mronj_status", "active" if active else "healed", date)
        if active and "pregnant" in concepts:
            self._set("pregnant", True, date)

    def _observation(self, observation: dict[str, Any]) -> None:
        if observation.get("status") not in OBSERVATION_DONE or "dataAbsentReason" in observation:
            return
        for code in codes_in(observation.get("code"), LOINC):
            if code in NOT_USED_LOINC:
                self.notes.append(f"LOINC {code} not used: {NOT_USED_LOINC[code]}")
            concept = LOINC_LABS[code][0] if code in LOINC_LABS else code
            if code == "69548-6":  # one variant assessment per gene: keep the latest of each
                concept += "|" + ",".join(sorted(_genes(observation)))
            date = _effective(observation)
            if concept not in self.latest or (date, _name(observation)) > (
                self.latest[concept][0],
                _name(self.latest[concept][1]),
            ):
                self.latest[concept] = (date, observation)

    def _medicationrequest(self, request: dict[str, Any]) -> None:
        if request.get("status") in CURRENT_STATUS[request["resourceType"]]:
            agent = identify_drug(request, self.index)
            if agent is None:
                self.unrecognised.append(_name(request))
            else:
                self.agents.add(agent)
                self._interval(request, agent)

    _medicationstatement = _medicationrequest

    def _interval(self, request: dict[str, Any], agent: str) -> None:
        weeks = dosing_interval_weeks(request)
        if agent in BMA_AGENTS and weeks is not None:
            self._set("meds.bma_interval_weeks", weeks)

    def _procedure(self, procedure: dict[str, Any]) -> None:
        if not is_dental_procedure(procedure):
            return
        status = procedure.get("status")
        if status in ("preparation", "in-progress"):
            self._set("dental.planned_invasive_procedure", True)
        performed = procedure.get("performedDateTime") or (
            procedure.get("performedPeriod") or {}
        ).get("end")
        if status == "completed" and isinstance(performed, str) and len(performed) >= 10:
            days = (self.as_of - dt.date.fromisoformat(performed[:10])).days
            known = self.data.get("dental", {}).get("days_since_invasive_procedure")
            if days >= 0 and (known is None or days < known):
                self._set("dental.days_since_invasive_procedure", days, performed[:10])

    def finish(self, complete: frozenset[str]) -> FhirMapping:
        self._observations()
        self._primary()
        self._medicines(complete)
        if self.problems:
            raise ProfileError([f"{self.source}: {p}" for p in self.problems])
        profile = parse_profile(self.data, f"{self.source} (mapped profile)")
        return FhirMapping(profile, sorted(set(self.notes)), dict(sorted(self.dates.items())))

    def _primary(self) -> None:
        sites = self.primaries
        if sites & {"lung_nsclc", "lung_sclc"}:
            sites = sites - {"lung"}  # an unsubtyped lung code next to a subtyped one
        if len(sites) == 1 and sites <= set(_PROFILE_SITES):
            self._set("primary.site", next(iter(sites)))
        elif sites == {"lung"}:
            self.notes.append("lung cancer without a coded subtype: primary.site unknown")
        elif sites:
            self.notes.append("several primary cancers coded: primary.site unknown")

    def _medicines(self, complete: frozenset[str]) -> None:
        if self.unrecognised:  # listed, never silently dropped (terminology.md §6)
            names = ", ".join(sorted(self.unrecognised))
            self.notes.append(f"medicines not recognised as a BMA or listed risk factor: {names}")
        bma = sorted(self.agents & set(BMA_AGENTS))
        if bma or "medications" in complete:
            self._set("meds.current_bma", bma)
        for flag in ("antiangiogenic", "corticosteroid", "ici", "tki"):
            if flag in self.agents:
                self._set(f"meds.{flag}", True)

    def _observations(self) -> None:
        for concept, (date, observation) in sorted(self.latest.items()):
            if concept in {path for path, _ in LOINC_LABS.values()}:
                self._quantity(concept, observation, date)
            elif concept == "89247-1" and isinstance(observation.get("valueInteger"), int):
                if 0 <= observation["valueInteger"] <= 4:
                    self._set("ecog", observation["valueInteger"], date)
            elif concept == "82810-3":
                self._pregnancy(observation, date)
            elif concept.startswith("69548-6|"):
                self._driver(observation, date)

    def _quantity(self, path: str, observation: dict[str, Any], date: str) -> None:
        code = next(c for c in codes_in(observation.get("code"), LOINC) if c in LOINC_LABS)
        analyte = LOINC_LABS[code][1]
        quantity = observation.get("valueQuantity")
        value = self._convert(quantity, analyte, observation, "valueQuantity", code)
        if value is None:
            return
        self._set(path, value, date)
        reference = (observation.get("referenceRange") or [{}])[0]
        for key, target in REFERENCE_LIMITS.get(path, ()):
            where = f"referenceRange.{key}"
            limit = self._convert(reference.get(key), analyte, observation, where, code)
            if limit is not None:
                self._set(target, limit, date)

    def _convert(
        self, quantity: Any, analyte: str, observation: dict[str, Any], where: str, code: str
    ) -> Any:
        if not isinstance(quantity, dict) or quantity.get("value") is None:
            return None
        unit = quantity.get("code")
        if quantity.get("system") != UCUM or unit not in UNITS[analyte]:
            shown = f"'{unit}'" if quantity.get("system") == UCUM else "without a UCUM system"
            self.problems.append(
                f"{_name(observation)}: {where}.code: unit {shown} is not accepted for LOINC "
                f"{code}; use {', '.join(UNITS[analyte])}"
            )
            return None
        target, factor = UNITS[analyte][unit]
        number = round(float(quantity["value"]) * factor, 4)
        return {"value": number, "unit": target} if target else number

    def _pregnancy(self, observation: dict[str, Any], date: str) -> None:
        answer = set(codes_in(observation.get("valueCodeableConcept"), SNOMED))
        if "77386006" in answer:
            self._set("pregnant", True, date)
        elif "60001007" in answer and self.data.get("pregnant") is not True:
            self._set("pregnant", False, date)

    def _driver(self, observation: dict[str, Any], date: str) -> None:
        genes = _genes(observation)
        answer = set(codes_in(observation.get("valueCodeableConcept"), LOINC))
        result = "positive" if "LA9633-4" in answer else "negative" if "LA9634-2" in answer else ""
        for gene, name in (("HGNC:3236", "egfr"), ("HGNC:427", "alk")):
            if gene in genes and result:
                self._set(f"drivers.{name}", result, date)


def dosing_interval_weeks(request: dict[str, Any]) -> float | None:
    """The interval of a once-per-period schedule (`timing.repeat`), in weeks."""
    dosage = (request.get("dosageInstruction") or request.get("dosage") or [{}])[0]
    repeat = ((dosage or {}).get("timing") or {}).get("repeat") or {}
    per_week = {"d": 1 / 7, "wk": 1.0, "mo": 52 / 12}
    if repeat.get("frequency", 1) != 1 or repeat.get("periodUnit") not in per_week:
        return None
    period = repeat.get("period")
    return round(float(period) * per_week[repeat["periodUnit"]], 2) if period else None


def _genes(observation: dict[str, Any]) -> set[str]:
    """HGNC ids of the `48018-6` (gene studied) components of a variant assessment."""
    return {
        code
        for component in observation.get("component", [])
        if "48018-6" in codes_in(component.get("code"), LOINC)
        for code in codes_in(component.get("valueCodeableConcept"), HGNC)
    }


def index_resources(resources: list[dict[str, Any]]) -> dict[str, Any]:
    return {f"{r['resourceType']}/{r.get('id')}": r for r in resources if r.get("id")}


def _name(resource: dict[str, Any]) -> str:
    return f"{resource['resourceType']}/{resource.get('id', '?')}"


def _morphology(condition: dict[str, Any]) -> str | None:
    concepts = [condition.get("code")] + [
        ext.get("valueCodeableConcept") for ext in condition.get("extension", [])
    ]
    codes = [code for concept in concepts for code in codes_in(concept, ICDO3)]
    return next((MORPHOLOGY[code] for code in codes if code in MORPHOLOGY), None)


def _primary_site(sites: set[str], morphology: str | None) -> str:
    if "lung" in sites or "lung_nsclc" in sites or "lung_sclc" in sites:
        subtype = sites & {"lung_nsclc", "lung_sclc"}
        if morphology == "lung_sclc" or subtype == {"lung_sclc"}:
            return "lung_sclc"
        return "lung_nsclc" if subtype == {"lung_nsclc"} else "lung"
    if morphology and morphology != "lung_sclc":
        return morphology
    sites = sites - {"bone-primary"} or {"other"}
    return sorted(sites)[0] if len(sites) == 1 else "ambiguous"


def _effective(observation: dict[str, Any]) -> str:
    period = observation.get("effectivePeriod") or {}
    for value in (
        observation.get("effectiveDateTime"),
        period.get("end"),
        observation.get("issued"),
    ):
        if isinstance(value, str):
            return value
    return str(observation.get("effectiveInstant", ""))


def _reference_date(timestamp: Any, source: str) -> dt.date:
    if timestamp is None:
        return dt.date.today()  # the CLI's own default; Bundle.timestamp makes files reproducible
    try:
        return dt.date.fromisoformat(str(timestamp)[:10])
    except ValueError:
        raise ProfileError([f"{source}: Bundle.timestamp: not a FHIR instant"]) from None
