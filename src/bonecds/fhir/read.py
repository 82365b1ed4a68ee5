"""FHIR R4 -> patient profile from Patient, Condition, Observation, Medication*, Procedure.

Each resource is validated on its own with the `fhir.resources.R4B` models (8.x has no R4 package;
R4B equals R4 for these resources, shared/standards/python-packages.md), never the whole Bundle:
one bad entry of a type bonecds does not read must not reject the rest (cds-hooks-checklist R-10).
Codes match on (system, code), never on the code alone (terminology.md §1); the code tables
are in `bonecds.fhir.codes`, and draft orders (order hooks) are read by `bonecds.fhir.orders`.
The mapping table with the verification status of every code is in docs/cds-hooks.md; codes
marked U there were written from knowledge and need checking before a rule depends on them.

Absent data stays unknown (`None`): no Observation is no value, no pregnancy record is not "not
pregnant" (terminology.md §7). Messages name resources and fields, never patient values. Each
note on what was not used is a key of `bonecds.fhir.notes` with its arguments, written in the
report's language by whoever knows it (`FhirMapping.texts`).
"""

from __future__ import annotations

import datetime as dt
import re
import typing
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from bonecds.errors import Problem, ProfileError
from bonecds.fhir.codes import (
    BMA_AGENTS,
    BONE_SITE_WORDS,
    BONE_SITES,
    CONDITION_CODES,
    CONDITION_NOTES,
    CURRENT_STATUS,
    DISEASE_STATUS,
    DISEASE_STATUS_LOINC,
    DISEASE_STATUS_PROFILE,
    DRIVER_GENES,
    ECOG_ANSWERS,
    ECOG_LOINC,
    HGNC,
    ICDO3,
    KARNOFSKY_LOINC,
    KARNOFSKY_TO_ECOG,
    LOINC,
    LOINC_LABS,
    LONG_BONES,
    MORPHOLOGY,
    NOT_USED_LOINC,
    OBSERVATION_DONE,
    OTHER_SITES,
    PERIOD_WEEKS,
    PRIMARY_SITES,
    RADIOTHERAPY_COURSE,
    RECEPTOR_LOINC,
    REFERENCE_LIMITS,
    RESULT_ANSWERS,
    SNOMED,
    SPINE_SITES,
    SYSTEMIC_CLASSES,
    TNM_STAGE_GROUP,
    UCUM,
    UNITS,
    UNMAPPED_LAB_LOINC,
    VARIANT_LOINC,
    as_dict,
    as_list,
    code_of,
    coded,
    codes_in,
    concept_text,
    identify_drug,
    is_dental_procedure,
    resolve_medication,
)
from bonecds.fhir.notes import MappingNote, in_english_order, note, one_line, render_note
from bonecds.profile.model import (
    PatientProfile,
    PrimarySite,
    parse_profile,
    refuse_duplicate_keys,
)

__all__ = [
    "PATIENT_REFERENCE",
    "bundle_mapping",
    "bundle_to_profile",
    "dosing_interval_weeks",
    "index_resources",
    "map_resources",
    "parse_resources",
    "patient_from",
    "validation_problems",
]

_PROFILE_SITES = typing.get_args(PrimarySite)


_MEDICATION_TYPES = ("MedicationRequest", "MedicationStatement")
_MEDICATION_ELEMENTS = ("medicationCodeableConcept", "medicationReference")
# Types read only through references (a Medication) or by the order hooks (ServiceRequest), and
# administrative types that carry no clinical fact: not listed as unused.
_QUIET_TYPES = {"Medication", "ServiceRequest", "Practitioner", "PractitionerRole", "Organization"}
_QUIET_TYPES |= {"Location", "Encounter", "Provenance", "OperationOutcome", "Device"}
# Patient/<id>, relative or absolute, optionally versioned (`/_history/<n>`).
PATIENT_REFERENCE = re.compile(r"(?:^|/)Patient/([A-Za-z0-9\-.]{1,64})(?:/_history/[^/]+)?$")
_STAGE_GROUP = re.compile(r"\bstage (IV|III|II|I)(?:[ABC]\d?)?\b", re.IGNORECASE)
_DAY = re.compile(r"^\d{4}-\d\d-\d\d")
_ICDO3 = re.compile(r"^\d{4}/\d$")
_SHAPE_ERRORS = (TypeError, ValueError, KeyError, AttributeError, IndexError)


@dataclass
class FhirMapping:
    """A profile mapped from FHIR, with remarks (no values) and the date behind each field."""

    profile: PatientProfile
    notes: list[MappingNote] = field(default_factory=list)
    dates: dict[str, str] = field(default_factory=dict)

    def texts(self, language: str = "en") -> list[str]:
        """The notes written in a report language (bonecds.fhir.notes), in English order."""
        return [render_note(item, language) for item in self.notes]


def patient_from(
    data: Any, source: str, as_of: dt.date | None = None, doc: Any = None
) -> FhirMapping:
    """A patient given as parsed data: a FHIR R4 Bundle (mapped, with its notes), else a patient
    profile (`doc`: the YAML document, for line numbers in its problems)."""
    if isinstance(data, dict) and data.get("resourceType") == "Bundle":
        if _repeats_a_key(data):
            refuse_duplicate_keys(data, source)  # names the key's path
        return bundle_mapping(data, source, as_of)
    return FhirMapping(parse_profile(data, source, doc))


def _repeats_a_key(data: Any) -> bool:
    """Whether the parsed JSON holds an object that repeated a key (marked by the parser as a
    dict subclass): the walk without the key paths, several times faster for a Bundle."""
    stack = [data]
    while stack:
        node = stack.pop()
        kind = node.__class__
        if kind is dict:
            stack.extend(node.values())
        elif kind is list:
            stack.extend(node)
        elif isinstance(node, dict):
            return True
    return False


def bundle_to_profile(
    bundle: dict[str, Any], source: str = "<bundle>", as_of: dt.date | None = None
) -> PatientProfile:
    """Map a FHIR R4 Bundle to a profile; ages and intervals are taken at `as_of`, else at
    `Bundle.timestamp`, else today.

    >>> bundle_to_profile({"resourceType": "Bundle", "type": "collection"}).sex is None
    True
    """
    return bundle_mapping(bundle, source, as_of).profile


def bundle_mapping(
    bundle: dict[str, Any], source: str = "<bundle>", as_of: dt.date | None = None
) -> FhirMapping:
    """A Bundle's profile with its mapping notes (each fact not used, and why)."""
    entries = bundle.get("entry", [])
    if not isinstance(entries, list):
        raise ProfileError([Problem(source, "Bundle.entry", "must be a list")])
    raw, notes = _entry_resources(entries, source)
    parsed = parse_resources(raw, f"{source}: Bundle.entry")
    if as_of is None:
        as_of = _reference_date(bundle.get("timestamp"), source)
    paged = any(as_dict(link).get("relation") == "next" for link in as_list(bundle.get("link")))
    if paged:
        notes.append(note("next-page-unread"))
    has_meds = any(r["resourceType"] in CURRENT_STATUS for r in parsed)
    complete = frozenset({"medications"} if has_meds and not paged else ())
    aliases = full_urls(entries)
    mapping = map_resources(parsed, as_of, complete=complete, source=source, aliases=aliases)
    if notes:  # the mapping's own notes are in order already
        mapping.notes = in_english_order(mapping.notes + notes)
    return mapping


def _entry_resources(entries: list[Any], source: str) -> tuple[list[Any], list[MappingNote]]:
    """Entry resources; an entry with no resource but a request (a transaction's DELETE) or a
    response (a transaction-response's `return=minimal`) is noted: it carries no data."""
    resources, notes = [], []
    for position, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise ProfileError([f"{source}: Bundle.entry[{position}]: not an object"])
        if entry.get("resource") is None and isinstance(entry.get("request"), dict):
            method = entry["request"].get("method")
            notes.append(note("entry-without-resource", position=position, method=method))
            continue
        if entry.get("resource") is None and isinstance(entry.get("response"), dict):
            status = entry["response"].get("status")
            notes.append(note("response-without-resource", position=position, status=status))
            continue
        resources.append(entry.get("resource"))
    return resources, notes


def full_urls(entries: Iterable[Any]) -> dict[str, dict[str, Any]]:
    """`fullUrl` -> resource, so `urn:uuid:` and absolute references resolve."""
    found = {}
    for entry in entries:
        url, resource = as_dict(entry).get("fullUrl"), as_dict(entry).get("resource")
        if isinstance(url, str) and isinstance(resource, dict):
            found[url] = resource
    return found


def parse_resources(raw: Iterable[Any], where: str) -> list[dict[str, Any]]:
    """The resources, refusing what is not FHIR at all; each is validated when it is mapped."""
    parsed, problems = [], []
    for index, resource in enumerate(raw):
        if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
            problems.append(f"{where}[{index}]: resource: not a FHIR resource (no resourceType)")
        else:
            parsed.append(resource)
    if problems:
        raise ProfileError(problems)
    return parsed


# FHIR R4 `date`, `dateTime` and `instant` (the regular expression of the R4 datatypes page).
_FHIR_DATETIME = re.compile(
    r"([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)(-(0[1-9]|1[0-2])(-(0[1-9]|[1-2][0-9]"
    r"|3[0-1])(T([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?(Z|(\+|-)((0[0-9]|1[0-3])"
    r":[0-5][0-9]|14:00)))?)?)?"
)
# Per type, the date elements the mapping reads (`a.b`: element b of element a) and its
# quantities (`referenceRange.0.low`: the low limit of the first range).
_DATES = {
    "Patient": ("birthDate", "deceasedDateTime"),
    "Condition": ("onsetDateTime", "recordedDate"),
    "Observation": ("effectiveDateTime", "effectivePeriod.end", "effectiveInstant", "issued"),
    "Procedure": ("performedDateTime", "performedPeriod.end"),
}
_QUANTITIES = {"Observation": ("valueQuantity", "referenceRange.0.low", "referenceRange.0.high")}


def shape_problems(resource: dict[str, Any]) -> list[tuple[str, str]]:
    """What the mapping reads and must not take on trust, as (note key, element path): dates in
    FHIR form (a date decides which value is the latest) and finite quantity values. Every other
    element is read defensively, so validating the whole resource (most of a request's cost) is
    not needed."""
    problems, kind = [], resource["resourceType"]
    for path in _DATES.get(kind, ()):
        value = resource.get(path) if "." not in path else _element(resource, path)
        if value is not None and not (isinstance(value, str) and _FHIR_DATETIME.fullmatch(value)):
            problems.append(("bad-date", path))
    for path in _QUANTITIES.get(kind, ()) if "valueQuantity" in resource else ():
        value = as_dict(_element(resource, path)).get("value")
        if value is not None and not _finite(value):
            problems.append(("bad-number", path))
    return problems


def _element(resource: dict[str, Any], path: str) -> Any:
    node: Any = resource
    for part in path.split("."):
        if isinstance(node, list) and part.isdigit():
            node = node[int(part)] if len(node) > int(part) else None
        else:
            node = as_dict(node).get(part)
    return node


def _finite(value: Any) -> bool:
    number = isinstance(value, int | float) and not isinstance(value, bool)
    return number and abs(value) < float("inf")


def validation_problems(resource: dict[str, Any], label: str) -> list[str]:
    """R4 problems of one resource (the draft orders), as `label ResourceType/id: field.path:
    message` lines."""
    from fhir.resources.R4B import get_fhir_model_class  # loads ~100 models: only when needed

    name = _name(resource)
    try:
        get_fhir_model_class(resource["resourceType"]).model_validate(resource)
    except ValidationError as error:
        # Built from loc and msg only: errors() also carries the input (patient data).
        return [
            f"{label} {name}: {'.'.join(str(p) for p in item['loc']) or 'resource'}: {item['msg']}"
            for item in error.errors(include_input=False, include_url=False)
        ]
    except (KeyError, TypeError, ValueError, RecursionError):
        return [f"{label} {name}: resource: not a valid FHIR R4 resource"]
    return []


def map_resources(
    resources: list[dict[str, Any]],
    as_of: dt.date,
    *,
    patient_id: str | None = None,
    complete: frozenset[str] = frozenset(),
    source: str = "FHIR",
    aliases: dict[str, dict[str, Any]] | None = None,
) -> FhirMapping:
    """Map resources to a profile. `complete` names lists known to be whole (`medications`),
    so an absent agent there means "not on it" rather than unknown. A resource bonecds cannot
    use is noted and skipped; one about another patient (or a deceased patient) is refused."""
    index = {**index_resources(resources), **(aliases or {})}
    builder = _Builder(as_of, patient_id or _record_patient(resources, source), source, index)
    for resource in sorted(resources, key=lambda r: (r["resourceType"], str(r.get("id", "")))):
        builder.add(resource)
    return builder.finish(complete)


def _record_patient(resources: list[dict[str, Any]], source: str) -> str | None:
    ids = {str(r.get("id")) for r in resources if r["resourceType"] == "Patient"}
    if len(ids) > 1:
        raise ProfileError([f"{source}: Patient: several patients in one record; send one"])
    return next(iter(ids), None)


class _Builder:
    """Collects profile fields from resources; later data never silently overwrites earlier."""

    def __init__(
        self, as_of: dt.date, patient_id: str | None, source: str, index: dict[str, Any]
    ) -> None:
        self.as_of, self.patient_id, self.source, self.index = as_of, patient_id, source, index
        self.data: dict[str, Any] = {}
        self.notes: list[MappingNote] = []
        self.dates: dict[str, str] = {}
        self.latest: dict[str, tuple[str, dict[str, Any]]] = {}
        self.primaries: set[str] = set()
        self.agents: set[str] = set()
        self.unrecognised: list[str] = []
        self.unread: set[str] = set()
        self.unusable: set[str] = set()
        self.histologies: set[tuple[str, str]] = set()
        self.meds_incomplete = False
        self.problems: list[str] = []
        # What a resource's codes say, worked out once for `add` and its handler: an
        # Observation's concept, a Procedure's kind (dental, radiotherapy or neither).
        self.coded: dict[int, str | None] = {}

    def add(self, resource: dict[str, Any]) -> None:
        kind = resource["resourceType"]
        handler = getattr(self, f"_{kind.lower()}", None)
        if handler is None:
            if kind not in _QUIET_TYPES:
                self.unread.add(kind)
            return
        problems = shape_problems(resource) if self._used(resource) else []
        if problems:
            key, path = problems[0]
            self._skip(resource, key, path=path)
            self._unusable(resource)
        elif self._owned(resource):
            try:
                handler(resource)
            except _SHAPE_ERRORS as error:
                self._skip(resource, "bad-shape", error=error.__class__.__name__)

    def _unusable(self, resource: dict[str, Any]) -> None:
        """An unusable Observation still counts as a result: if it is (or may be, its date
        unreadable) the latest, the field stays unknown rather than an older value standing in."""
        concept = self._coded(resource) if resource["resourceType"] == "Observation" else None
        if concept is not None and self._owned(resource):
            date = _effective(resource)
            readable = isinstance(date, str) and _FHIR_DATETIME.fullmatch(date)
            self.unusable.add(_name(resource))
            self._keep_latest(concept, date if readable else "9999", resource)

    def _used(self, resource: dict[str, Any]) -> bool:
        """Whether the mapping may take a fact from the resource; one it only notes as unused
        needs no validation (validation is most of the cost of a request)."""
        if resource["resourceType"] in ("Observation", "Procedure"):
            return self._coded(resource) is not None
        return True

    def _coded(self, resource: dict[str, Any]) -> str | None:
        key = id(resource)  # the resource outlives the builder: its id is not reused
        if key not in self.coded:
            self.coded[key] = (
                _observation_concept(resource)
                if resource["resourceType"] == "Observation"
                else _procedure_kind(resource)
            )
        return self.coded[key]

    def _note(self, key: str, **args: object) -> None:
        self.notes.append(note(key, **args))

    def _skip(self, resource: dict[str, Any], key: str, **args: object) -> None:
        self._note(key, name=_name(resource), **args)
        if resource["resourceType"] in _MEDICATION_TYPES:
            self.meds_incomplete = True

    def _owned(self, resource: dict[str, Any]) -> bool:
        """Whether the resource is about this patient, whatever the reference form; another
        patient's data is refused (a prefetch mix-up must never reach the evaluation)."""
        if resource["resourceType"] == "Patient":
            found: str | None = str(resource.get("id"))
        else:
            holder = resource.get("subject") if "subject" in resource else resource.get("patient")
            reference = as_dict(holder).get("reference")
            if not isinstance(reference, str):
                return True  # no reference: the record's own (a display-only subject)
            found = self._patient_of(reference)
            if found is None:
                self._skip(resource, "subject-unresolved")
                return False
        if self.patient_id is None:
            self.patient_id = found
        if found != self.patient_id:
            self.problems.append(f"{_name(resource)}: subject: refers to another patient")
            return False
        return True

    def _patient_of(self, reference: str) -> str | None:
        target = self.index.get(reference)
        if isinstance(target, dict):
            is_patient = target.get("resourceType") == "Patient" and target.get("id")
            return str(target["id"]) if is_patient else None
        match = PATIENT_REFERENCE.search(reference)
        if match:
            return match.group(1)
        # `urn:uuid:<id>` without its Bundle entry (a prefetch or export built from a Synthea
        # transaction): this record's Patient when one of that id is here, as batch resolves
        # it; any other uuid stays unresolved (noted, not used).
        patient = self.index.get(f"Patient/{reference.removeprefix('urn:uuid:')}")
        if reference.startswith("urn:uuid:") and isinstance(patient, dict):
            return str(patient["id"])
        return None

    def _set(self, path: str, value: Any, date: str = "") -> None:
        node = self.data
        *parents, leaf = path.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
        if date:
            self.dates[path] = date

    def _patient(self, patient: dict[str, Any]) -> None:
        if patient.get("deceasedBoolean") is True or patient.get("deceasedDateTime"):
            self.problems.append(
                f"{_name(patient)}: deceased: the patient is recorded as deceased; "
                "bonecds evaluates living patients only"
            )
            return
        self._set("patient_id", patient.get("id"))
        if patient.get("gender") in ("female", "male"):
            self._set("sex", patient["gender"])
        elif patient.get("gender"):
            self._note("gender-other")
        born = _day(patient.get("birthDate"))
        if born is not None:
            years = self.as_of.year - born.year
            years -= (self.as_of.month, self.as_of.day) < (born.month, born.day)
            self._set("age_years", float(years), self.as_of.isoformat())
        elif patient.get("birthDate"):
            self._note("birth-date-partial")

    def _condition(self, condition: dict[str, Any]) -> None:
        name = _name(condition)
        verification = code_of(condition.get("verificationStatus"))
        if verification in ("refuted", "entered-in-error"):
            self._note("condition-refuted", name=name, status=verification)
            return
        status = code_of(condition.get("clinicalStatus"))
        active = status in (None, "active", "recurrence", "relapse")
        concepts = {CONDITION_CODES[key] for key in coded(condition.get("code"), prefix=True)}
        morphology = _morphology(condition)
        bone, other = self._body_sites(condition)
        if "secondary" in concepts:
            self._secondary(name, bone, other)
            if bone:
                concepts.add("bone-mets")
        if concepts & PRIMARY_SITES or morphology:
            self.primaries.add(_primary_site(concepts & PRIMARY_SITES, morphology))
        if concepts & PRIMARY_SITES or morphology:
            self._histology(condition)
        date = str(condition.get("onsetDateTime") or condition.get("recordedDate") or "")
        if "bone-mets" in concepts:
            self._bone_metastasis(bone, date) if active else self._note(
                "bone-metastasis-inactive", name=name, status=status
            )
        flags = {"cord-compression": "neuro.cord_compression", "pregnant": "pregnant"}
        for concept, path in flags.items():
            if active and concept in concepts:
                self._set(path, True, date)
        if "mronj" in concepts:
            self._set("dental.mronj_status", "active" if active else "healed", date)
        if "secondary-elsewhere" in concepts:
            where = (concept_text(condition.get("code")),)
            self._note("metastasis-elsewhere", name=name, places=where)
        if "cancer-unspecified" in concepts:
            self._note("cancer-unspecified", name=name)
        for concept in sorted(concepts & CONDITION_NOTES.keys()):
            self._note(f"condition-{concept}", name=name, text=concept_text(condition.get("code")))
        if not concepts and not morphology:
            self._note("not-used", name=name, text=concept_text(condition.get("code")))

    def _body_sites(self, condition: dict[str, Any]) -> tuple[list[str], list[str]]:
        """Bone sites (SNOMED table, else the site's text) and other sites of a Condition."""
        bone, other = [], []
        for site in as_list(condition.get("bodySite")):
            known = [BONE_SITES[c] for c in codes_in(site, SNOMED) if c in BONE_SITES]
            text = " ".join(concept_text(site).lower().split())
            words = [part for word, part in BONE_SITE_WORDS.items() if word in text]
            if known or words:
                bone.append((known or words)[0])
            else:
                codes = codes_in(site, SNOMED)
                other.append(OTHER_SITES.get(codes[0], text) if codes else text or "uncoded")
        return bone, other

    def _secondary(self, name: str, bone: list[str], other: list[str]) -> None:
        if other:
            self._note("metastasis-elsewhere", name=name, places=tuple(sorted(set(other))))
        if not bone and not other:
            self._note("secondary-without-site", name=name)

    def _bone_metastasis(self, sites: list[str], date: str) -> None:
        self._set("bone.metastases_present", True, date)
        named = sorted(set(self.data.get("bone", {}).get("sites", [])) | set(sites))
        if named:
            self._set("bone.sites", named)
        if LONG_BONES & set(sites):
            self._set("bone.long_bone_lesion", True, date)
        if SPINE_SITES & set(sites):
            self._set("bone.spine_involved", True, date)

    def _histology(self, condition: dict[str, Any]) -> None:
        """A primary cancer's histology: an ICD-O-3 morphology code, else the text of a SNOMED
        morphology (the profile derives `primary.histology_class` from either)."""
        concepts = [condition.get("code")]
        concepts += [
            as_dict(e).get("valueCodeableConcept") for e in as_list(condition.get("extension"))
        ]
        icdo3 = [c for concept in concepts for c in codes_in(concept, ICDO3) if _ICDO3.match(c)]
        snomed = [concept for concept in concepts[1:] if codes_in(concept, SNOMED)]
        if icdo3:
            self.histologies.add(("primary.histology_icdo3", icdo3[0]))
        elif snomed:
            self.histologies.add(("primary.histology", concept_text(snomed[0])))
            self._note("histology-from-text", name=_name(condition))

    def _observation(self, observation: dict[str, Any]) -> None:
        name, status = _name(observation), observation.get("status")
        if status not in OBSERVATION_DONE or "dataAbsentReason" in observation:
            key = "observation-without-status" if status is None else "observation-not-final"
            self._note(key, name=name, status=status)
            return
        concept = self._coded(observation)
        if concept is None:
            self._unused_observation(observation)
            return
        self._keep_latest(concept, _effective(observation), observation)

    def _keep_latest(self, concept: str, date: str, observation: dict[str, Any]) -> None:
        name = _name(observation)
        if concept not in self.latest or (date, name) > (
            self.latest[concept][0],
            _name(self.latest[concept][1]),
        ):
            if concept in self.latest:
                self._note("superseded", name=_name(self.latest[concept][1]))
            self.latest[concept] = (date, observation)
        else:
            self._note("superseded", name=name)

    def _unused_observation(self, observation: dict[str, Any]) -> None:
        code, name = observation.get("code"), _name(observation)
        known = [c for c in codes_in(code, LOINC) if c in _UNUSED_LOINC]
        for loinc in known:  # the reason is the code's (codes.py), so the note is keyed by it
            self._note(f"loinc-{loinc}", name=name)
        if not known:
            self._note("not-used", name=name, text=concept_text(code))

    def _medicationrequest(self, request: dict[str, Any]) -> None:
        name, status = _name(request), request.get("status")
        if status not in CURRENT_STATUS[request["resourceType"]]:
            self._past_medicine(request, status)
            return
        if not any(isinstance(request.get(k), dict) for k in _MEDICATION_ELEMENTS):
            self._skip(request, "no-medicine")
            return
        agent = identify_drug(request, self.index)
        reference = as_dict(request.get("medicationReference"))
        unresolved = bool(reference) and resolve_medication(request, self.index) is None
        if unresolved:
            self._note("medicine-from-display" if agent else "medicine-unknown", name=name)
        if agent is None and unresolved and not request.get("medicationCodeableConcept"):
            self.meds_incomplete = True
        elif agent is None:
            self.unrecognised.append(name)
        else:
            self.agents.add(agent)
            self._interval(request, agent)

    _medicationstatement = _medicationrequest

    def _past_medicine(self, request: dict[str, Any], status: Any) -> None:
        agent = identify_drug(request, self.index)
        if status in ("stopped", "completed") and agent in BMA_AGENTS:
            self._set("meds.previous_bma.agent", agent)
            self._note("stopped-bma", name=_name(request), agent=agent)
        else:
            key = "medicine-without-status" if status is None else "medicine-not-current"
            self._note(key, name=_name(request), status=status)

    def _interval(self, request: dict[str, Any], agent: str) -> None:
        weeks = dosing_interval_weeks(request)
        if agent in BMA_AGENTS and weeks is not None:
            self._set("meds.bma_interval_weeks", weeks)

    def _procedure(self, procedure: dict[str, Any]) -> None:
        kind = self._coded(procedure)
        if kind != "dental":
            if kind == "radiotherapy":
                self._radiotherapy(procedure)
            else:
                what = concept_text(procedure.get("code"))
                self._note("procedure-not-used", name=_name(procedure), text=what)
            return
        status = procedure.get("status")
        if status in ("preparation", "in-progress"):
            self._set("dental.planned_invasive_procedure", True)
        period = as_dict(procedure.get("performedPeriod"))
        performed = procedure.get("performedDateTime") or period.get("end")
        day = _day(performed)
        if status == "completed" and day is not None:
            days = (self.as_of - day).days
            known = self.data.get("dental", {}).get("days_since_invasive_procedure")
            if days >= 0 and (known is None or days < known):
                self._set("dental.days_since_invasive_procedure", days, day.isoformat())

    def _radiotherapy(self, procedure: dict[str, Any]) -> None:
        """An mCODE radiotherapy course summary: its body sites join bone.prior_rt_sites."""
        sites = [concept_text(site) for site in as_list(procedure.get("bodySite"))]
        if procedure.get("status") not in ("completed", "in-progress") or not sites:
            self._note("radiotherapy-without-site", name=_name(procedure))
            return
        known = self.data.get("bone", {}).get("prior_rt_sites", [])
        self._set("bone.prior_rt_sites", sorted({*known, *sites}))

    def finish(self, complete: frozenset[str]) -> FhirMapping:
        self._observations()
        self._primary()
        self._medicines(complete)
        if self.unread:
            self._note("types-unread", types=tuple(sorted(self.unread)))
        if self.problems:
            raise ProfileError([one_line(f"{self.source}: {p}") for p in self.problems])
        profile = self._profile()
        notes = in_english_order(self.notes)
        return FhirMapping(profile, notes, dict(sorted(self.dates.items())))

    def _profile(self) -> PatientProfile:
        """The profile; a mapped value the profile refuses is dropped with a note, not fatal."""
        for _attempt in range(64):
            try:
                return PatientProfile.model_validate(self.data)
            except ValidationError as error:
                first = error.errors(include_input=False, include_url=False)[0]
                path = [str(part) for part in first["loc"]]
                depth = 2 if isinstance(self.data.get(path[0]), dict) and len(path) > 1 else 1
                self._drop(path[:depth])
                where = ".".join(path[:depth])
                self._note("value-refused", path=where, message=first["msg"])
        return parse_profile(self.data, f"{self.source} (mapped profile)")

    def _drop(self, path: list[str]) -> None:
        node = self.data
        for part in path[:-1]:
            node = node[part]
        node.pop(path[-1], None)
        self.dates.pop(".".join(path), None)

    def _primary(self) -> None:
        sites = self.primaries
        if sites & {"lung_nsclc", "lung_sclc"}:
            sites = sites - {"lung"}  # an unsubtyped lung code next to a subtyped one
        if len(sites) == 1 and sites <= set(_PROFILE_SITES):
            self._set("primary.site", next(iter(sites)))
            self._primary_histology()
        elif sites == {"lung"}:
            self._note("lung-subtype-unknown")
        elif sites:
            self._note("primaries-several")

    def _primary_histology(self) -> None:
        if len(self.histologies) == 1:
            self._set(*next(iter(self.histologies)))
        elif self.histologies:
            self._note("histologies-several")

    def _medicines(self, complete: frozenset[str]) -> None:
        if self.unrecognised:  # listed, never silently dropped (terminology.md §6)
            self._note("medicines-unrecognised", names=tuple(sorted(self.unrecognised)))
        bma = sorted(self.agents & set(BMA_AGENTS))
        if self.meds_incomplete:
            self._note("medicines-incomplete")
        whole = "medications" in complete and not self.meds_incomplete
        if bma or whole:
            self._set("meds.current_bma", bma)
        classes = sorted(self.agents & set(SYSTEMIC_CLASSES))
        if classes or whole:
            self._set("meds.systemic_therapy", classes)
        for flag in ("antiangiogenic", "corticosteroid", "ici", "tki", "chemotherapy"):
            if flag in self.agents:
                self._set(f"meds.{flag}", True)

    def _observations(self) -> None:
        readers = {
            ECOG_LOINC: self._ecog,
            KARNOFSKY_LOINC: self._karnofsky,
            "82810-3": self._pregnancy,
            DISEASE_STATUS_LOINC: self._disease_status,
            "stage-group": self._stage_group,
        }
        lab_paths = {path for path, _ in LOINC_LABS.values()}
        for concept, (date, observation) in sorted(self.latest.items()):
            if _name(observation) in self.unusable:
                self._note("latest-unusable", concept=concept)
                continue
            try:
                if concept in lab_paths:
                    self._quantity(concept, observation, date)
                elif concept.startswith(f"{VARIANT_LOINC}|"):
                    self._driver(observation, date)
                elif concept.startswith("drivers."):
                    self._receptor(concept, observation, date)
                else:
                    readers[concept](observation, date)
            except _SHAPE_ERRORS as error:
                self._skip(observation, "bad-shape", error=error.__class__.__name__)

    def _ecog(self, observation: dict[str, Any], date: str) -> None:
        value = observation.get("valueInteger")
        answers = [
            ECOG_ANSWERS[c]
            for c in codes_in(observation.get("valueCodeableConcept"), LOINC)
            if c in ECOG_ANSWERS
        ]
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 4:
            self._set("ecog", value, date)
        elif answers:
            self._set("ecog", answers[0], date)
        else:
            self._note("ecog-unreadable", name=_name(observation))

    def _karnofsky(self, observation: dict[str, Any], date: str) -> None:
        """ECOG computed from a Karnofsky score when no ECOG is recorded, by a published
        crosswalk (KARNOFSKY_TO_ECOG), and labelled computed in the notes."""
        name, score = _name(observation), observation.get("valueInteger")
        if ECOG_LOINC in self.latest:
            self._note("karnofsky-beside-ecog", name=name)
        elif isinstance(score, int) and not isinstance(score, bool) and 10 <= score <= 100:
            ecog = next(grade for low, grade in KARNOFSKY_TO_ECOG if score >= low)
            self._set("ecog", ecog, date)
            self._note("ecog-from-karnofsky", name=name)  # the note cites KARNOFSKY_CITATION
        else:
            self._note("karnofsky-unreadable", name=name)

    def _disease_status(self, observation: dict[str, Any], date: str) -> None:
        codes = codes_in(observation.get("valueCodeableConcept"), SNOMED)
        status = next((DISEASE_STATUS[c] for c in codes if c in DISEASE_STATUS), "unrecognised")
        if status in DISEASE_STATUS_PROFILE:
            self._set("disease_status", DISEASE_STATUS_PROFILE[status], date)
            return
        self._note("disease-status-unused", name=_name(observation), status=status)

    def _stage_group(self, observation: dict[str, Any], date: str) -> None:
        text = concept_text(observation.get("valueCodeableConcept"))
        match = _STAGE_GROUP.search(text)
        if match:
            self._set("primary.stage_group", match.group(1).upper(), date)
            self._note("stage-from-text", name=_name(observation))
        else:
            self._note("stage-unreadable", name=_name(observation))

    def _quantity(self, path: str, observation: dict[str, Any], date: str) -> None:
        code = next(c for c in codes_in(observation.get("code"), LOINC) if c in LOINC_LABS)
        analyte = LOINC_LABS[code][1]
        quantity = observation.get("valueQuantity")
        value = self._convert(quantity, analyte, observation, "valueQuantity", code)
        if value is None:
            return
        self._set(path, value, date)
        ranges = as_list(observation.get("referenceRange"))
        reference = as_dict(ranges[0] if ranges else None)
        for key, target in REFERENCE_LIMITS.get(path, ()):
            where = f"referenceRange.{key}"
            limit = self._convert(reference.get(key), analyte, observation, where, code)
            if limit is not None:
                self._set(target, limit, date)

    def _convert(
        self, quantity: Any, analyte: str, observation: dict[str, Any], where: str, code: str
    ) -> Any:
        """A UCUM quantity in a unit of the analyte, converted; anything else is noted and
        dropped (the field stays unknown, so the rules ask for it): never the whole patient."""
        quantity = as_dict(quantity)
        value = quantity.get("value")
        if not isinstance(value, int | float) or isinstance(value, bool):
            if quantity:
                self._note("value-not-number", name=_name(observation), path=where)
            return None
        unit = _ucum_unit(quantity.get("code"), analyte)
        if quantity.get("system") != UCUM or unit is None:
            self._unit_refused(quantity, observation, where, code, analyte)
            return None
        target, factor = UNITS[analyte][unit]
        number = round(float(value) * factor, 4)
        return {"value": number, "unit": target} if target else number

    def _unit_refused(
        self,
        quantity: dict[str, Any],
        observation: dict[str, Any],
        where: str,
        code: str,
        analyte: str,
    ) -> None:
        ucum = quantity.get("code")
        if quantity.get("system") != UCUM:
            key, shown = "unit-without-system", {}
        elif isinstance(ucum, str):
            key, shown = "unit-refused", {"unit": ucum}
        else:
            key, shown = "unit-without-code", {}
        name, units = _name(observation), tuple(UNITS[analyte])
        self._note(key, name=name, path=where, code=code, units=units, **shown)

    def _pregnancy(self, observation: dict[str, Any], date: str) -> None:
        answer = set(codes_in(observation.get("valueCodeableConcept"), SNOMED))
        if "77386006" in answer:
            self._set("pregnant", True, date)
        elif "60001007" in answer and self.data.get("pregnant") is not True:
            self._set("pregnant", False, date)

    def _driver(self, observation: dict[str, Any], date: str) -> None:
        """A Genomics Reporting variant assessment: each driver gene studied, present or absent."""
        genes = _genes(observation)
        answers = codes_in(observation.get("valueCodeableConcept"), LOINC)
        result = next((RESULT_ANSWERS[c] for c in answers if c in RESULT_ANSWERS), None)
        drivers = sorted(DRIVER_GENES[gene] for gene in genes if gene in DRIVER_GENES)
        for name in drivers if result else ():
            self._set(f"drivers.{name}", result, date)
        if not drivers or not result:
            if genes:
                self._note("variant-unused", name=_name(observation), genes=tuple(sorted(genes)))
            else:
                self._note("variant-without-gene", name=_name(observation))

    def _receptor(self, path: str, observation: dict[str, Any], date: str) -> None:
        answers = codes_in(observation.get("valueCodeableConcept"), LOINC)
        result = next((RESULT_ANSWERS[c] for c in answers if c in RESULT_ANSWERS), None)
        if result in ("positive", "negative"):
            self._set(path, result, date)
        else:
            self._note("receptor-unreadable", name=_name(observation), path=path)


def _observation_concept(observation: dict[str, Any]) -> str | None:
    """The key an Observation is kept under (the latest of each wins), or None if unused."""
    code = observation.get("code")
    for found in codes_in(code, LOINC):
        if found in LOINC_LABS:
            return LOINC_LABS[found][0]
        if found == VARIANT_LOINC:  # one variant assessment per gene: the latest of each
            return f"{found}|" + ",".join(sorted(_genes(observation)))
        if found in (ECOG_LOINC, KARNOFSKY_LOINC, "82810-3", DISEASE_STATUS_LOINC):
            return found
        if found in RECEPTOR_LOINC:
            return f"drivers.{RECEPTOR_LOINC[found]}"
    return "stage-group" if TNM_STAGE_GROUP & set(codes_in(code, SNOMED)) else None


def _procedure_kind(procedure: dict[str, Any]) -> str | None:
    if is_dental_procedure(procedure):
        return "dental"
    radiotherapy = RADIOTHERAPY_COURSE in codes_in(procedure.get("code"), SNOMED)
    return "radiotherapy" if radiotherapy else None


_UNUSED_LOINC = {**NOT_USED_LOINC, **UNMAPPED_LAB_LOINC}  # LOINC codes noted with a reason


def _ucum_unit(code: Any, analyte: str) -> str | None:
    """The table's unit for a UCUM code; UCUM's `l` is the litre as `L` is (mg/dl = mg/dL)."""
    if not isinstance(code, str):
        return None
    if code in UNITS[analyte]:
        return code
    litre = re.sub(r"/(d?)l$", r"/\1L", code)
    return litre if litre in UNITS[analyte] else None


def dosing_interval_weeks(request: dict[str, Any]) -> float | None:
    """The interval of a once-per-period schedule (`timing.repeat`), in weeks."""
    dosages = as_list(request.get("dosageInstruction") or request.get("dosage"))
    dosage = as_dict(dosages[0] if dosages else None)
    repeat = as_dict(as_dict(dosage.get("timing")).get("repeat"))
    unit, period = repeat.get("periodUnit"), repeat.get("period")
    if repeat.get("frequency", 1) != 1 or not isinstance(unit, str) or unit not in PERIOD_WEEKS:
        return None
    if not isinstance(period, int | float) or isinstance(period, bool) or not period > 0:
        return None
    weeks = round(float(period) * PERIOD_WEEKS[unit], 2)
    return weeks if 0 < weeks < float("inf") else None


def _genes(observation: dict[str, Any]) -> set[str]:
    """HGNC ids of the `48018-6` (gene studied) components of a variant assessment."""
    return {
        code
        for component in as_list(observation.get("component"))
        if "48018-6" in codes_in(as_dict(component).get("code"), LOINC)
        for code in codes_in(as_dict(component).get("valueCodeableConcept"), HGNC)
    }


def index_resources(resources: list[dict[str, Any]]) -> dict[str, Any]:
    return {f"{r['resourceType']}/{r.get('id')}": r for r in resources if r.get("id")}


def _name(resource: dict[str, Any]) -> str:
    ident = resource.get("id")
    return f"{resource['resourceType']}/{ident if isinstance(ident, str) else '?'}"


def _day(value: Any) -> dt.date | None:
    """The calendar day of a FHIR date/dateTime, or None for a partial or invalid one."""
    if not isinstance(value, str) or not _DAY.match(value):
        return None
    try:
        return dt.date.fromisoformat(value[:10])
    except ValueError:
        return None


def _morphology(condition: dict[str, Any]) -> str | None:
    extensions = [
        as_dict(ext).get("valueCodeableConcept") for ext in as_list(condition.get("extension"))
    ]
    codes = [
        code
        for concept in [condition.get("code"), *extensions]
        for code in codes_in(concept, ICDO3)
    ]
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
    period = as_dict(observation.get("effectivePeriod"))
    for value in (
        observation.get("effectiveDateTime"),
        period.get("end"),
        observation.get("issued"),
        observation.get("effectiveInstant"),
    ):
        if isinstance(value, str):
            return value
    return ""


def _reference_date(timestamp: Any, source: str) -> dt.date:
    if timestamp is None:
        return dt.date.today()  # the CLI's own default; Bundle.timestamp makes files reproducible
    try:
        return dt.date.fromisoformat(str(timestamp)[:10])
    except ValueError:
        raise ProfileError([Problem(source, "Bundle.timestamp", "not a FHIR instant")]) from None
