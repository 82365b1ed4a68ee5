"""FHIR R4 -> profile: (system, code) matching, UCUM units, per-entry checks, value-free errors."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from typer.testing import CliRunner

from bonecds.cli.app import app
from bonecds.errors import ProfileError
from bonecds.fhir.codes import ICD10CM, ICDO3, LOINC, RXNORM, SNOMED, UCUM, identify_drug
from bonecds.fhir.orders import dose_mg, read_draft_orders
from bonecds.fhir.read import (
    bundle_mapping,
    bundle_to_profile,
    dosing_interval_weeks,
    map_resources,
    parse_resources,
)
from bonecds.profile.model import Quantity
from tests.conftest import AS_OF, DATA, FIXTURES, RULES

FHIR = DATA / "fhir"
BUNDLE: dict[str, Any] = json.loads((FHIR / "breast-bone-mets.json").read_text())
EXAMPLES = FHIR / "cds-hooks-examples"


def resources(*extra: dict[str, Any], drop: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    found = [copy.deepcopy(e["resource"]) for e in BUNDLE["entry"]]
    return [r for r in found if r["id"] not in drop] + list(extra)


def mapped(items: list[dict[str, Any]], **options: Any) -> Any:
    return map_resources(parse_resources(items, "test"), AS_OF, **options)


def observation(ident: str, loinc: str, value: float, unit: str, **extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": ident,
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": loinc}]},
        "effectiveDateTime": "2026-11-22",
        "valueQuantity": {"value": value, "system": UCUM, "code": unit},
        **extra,
    }


def condition(ident: str, system: str, code: str, **extra: Any) -> dict[str, Any]:
    coding = {"system": system, "code": code}
    return {
        "resourceType": "Condition",
        "id": ident,
        "code": {"coding": [coding]},
        **extra,
        "subject": {"reference": "Patient/pt-breast-1"},
    }


def test_the_sample_bundle_maps_to_the_expected_profile() -> None:
    profile = bundle_to_profile(BUNDLE, "sample")
    assert profile.model_dump(exclude_none=True, exclude_defaults=True) == {
        "patient_id": "pt-breast-1",
        "age_years": 58.0,  # born 1968-03-14, at Bundle.timestamp 2026-11-23
        "sex": "female",
        "weight_kg": 60.0,
        "pregnant": False,
        "primary": {"site": "breast"},
        "bone": {"metastases_present": True, "sites": ["femur"], "long_bone_lesion": True},
        "ecog": 1,
        "labs": {
            "scr": {"value": 1.3, "unit": "mg/dL"},  # the latest of two creatinines
            "calcium_total": {"value": 9.4, "unit": "mg/dL"},
            "albumin": {"value": 38.0, "unit": "g/L"},
            "calcium_lln": {"value": 8.6, "unit": "mg/dL"},
            "calcium_uln": {"value": 10.2, "unit": "mg/dL"},
        },
        "dental": {"days_since_invasive_procedure": 83},
        # medication resources present: the list is known
        "meds": {"current_bma": [], "systemic_therapy": ["aromatase_inhibitor"]},
    }


def test_bonecds_evaluate_accepts_a_bundle() -> None:
    for path in (
        FHIR / "breast-bone-mets.json",
        FIXTURES / "fhir" / "sample-breast-bone-mets.json",
    ):
        result = CliRunner().invoke(
            app,
            ["evaluate", str(path), "-f", "json", "--as-of", "2026-11-23", "--rules", str(RULES)],
        )
        assert result.exit_code == 0, result.stderr
        report = json.loads(result.stdout)
        zoledronic = next(item for item in report["ranked"] if item["id"] == "zoledronic-acid")
        assert zoledronic["dose"]["amount"] == 3.3  # Cockcroft-Gault 44.7 mL/min from the Bundle


def test_the_cli_report_shows_the_mapping_notes() -> None:
    args = ["evaluate", str(FHIR / "breast-bone-mets.json"), "--as-of", "2026-11-23"]
    result = CliRunner().invoke(app, [*args, "--rules", str(RULES)])
    assert result.exit_code == 0, result.stderr
    assert "FHIR: Observation/o-egfr: LOINC 98979-8 not used" in result.stdout


@pytest.mark.parametrize(
    ("loinc", "value", "unit", "field", "expected"),
    [
        ("14682-9", 115.0, "umol/L", "scr", {"value": 115.0, "unit": "umol/L"}),
        ("2160-0", 0.115, "mmol/L", "scr", {"value": 115.0, "unit": "umol/L"}),
        ("2160-0", 13.0, "mg/L", "scr", {"value": 1.3, "unit": "mg/dL"}),
        ("2000-8", 2.35, "mmol/L", "calcium_total", {"value": 2.35, "unit": "mmol/L"}),
        ("1995-0", 1.1, "mmol/L", "calcium_ionised", {"value": 1.1, "unit": "mmol/L"}),
        ("1751-7", 3.5, "g/dL", "albumin", {"value": 3.5, "unit": "g/dL"}),
        ("2164-2", 48.0, "mL/min", "crcl_ml_min", 48.0),
        ("6768-6", 250.0, "U/L", "alp_u_l", 250.0),
        ("2039-6", 12.0, "ug/L", "cea_ng_ml", 12.0),
    ],
)
def test_units_are_read_from_ucum_codes(
    loinc: str, value: float, unit: str, field: str, expected: Any
) -> None:
    profile = mapped(
        resources(observation("o-new", loinc, value, unit, effectiveDateTime="2026-11-23"))
    )
    found = getattr(profile.profile.labs, field)
    assert (found.model_dump() if hasattr(found, "model_dump") else found) == expected


def test_weight_in_pounds_is_converted() -> None:
    item = observation("o-lb", "29463-7", 132.0, "[lb_av]", effectiveDateTime="2026-11-23")
    assert mapped(resources(item)).profile.weight_kg == pytest.approx(59.874, abs=1e-3)


def test_an_unknown_unit_drops_that_value_with_a_note_not_the_patient() -> None:
    item = observation("o-bad", "2160-0", 987.65, "mmol/dL", effectiveDateTime="2026-11-23")
    result = mapped(resources(item))
    assert result.profile.labs.scr is None  # the latest creatinine is unusable: unknown
    assert result.profile.primary.site == "breast"  # the rest of the patient is evaluated
    assert (
        "Observation/o-bad: valueQuantity.code: unit 'mmol/dL' is not accepted for LOINC "
        "2160-0 (use mg/dL, umol/L, mmol/L, mg/L); value not used"
    ) in result.texts()
    assert "987" not in str(result.texts())


def test_a_quantity_without_ucum_system_drops_that_value_with_a_note() -> None:
    item = observation("o-nosys", "17861-6", 9.1, "mg/dL", effectiveDateTime="2026-11-23")
    del item["valueQuantity"]["system"]
    result = mapped(resources(item))
    assert result.profile.labs.calcium_total is None
    assert any(
        n.startswith("Observation/o-nosys: valueQuantity.code: unit without a UCUM")
        for n in result.texts()
    )


def test_a_ucum_quantity_without_a_code_is_named_so_in_its_note() -> None:
    """US Core 7.0.0 serum calcium: UCUM system, `unit` text, no `code` (not "unit 'None'")."""
    item = observation("o-nocode", "17861-6", 7.7, "mg/dL", effectiveDateTime="2026-11-23")
    del item["valueQuantity"]["code"]
    result = mapped(resources(item))
    assert result.profile.labs.calcium_total is None
    assert (
        "Observation/o-nocode: valueQuantity.code: unit without a UCUM code is not accepted for "
        "LOINC 17861-6 (use mg/dL, mmol/L); value not used"
    ) in result.texts()


@pytest.mark.parametrize("unit", ["mg/dl", "mg/dL"])
def test_ucum_lower_case_litre_is_the_same_unit(unit: str) -> None:
    item = observation("o-dl", "17861-6", 9.1, unit, effectiveDateTime="2026-11-23")
    assert mapped(resources(item)).profile.labs.calcium_total == Quantity(value=9.1, unit="mg/dL")


def test_invalid_r4_is_noted_and_skipped_and_non_fhir_is_refused() -> None:
    broken = observation("o-broken", "2160-0", 1.0, "mg/dL", effectiveDateTime="yesterday")
    result = mapped([*resources(), broken])
    assert any(
        n.startswith("Observation/o-broken: effectiveDateTime:") and n.endswith("not used")
        for n in result.texts()
    )
    # its date is unreadable, so it may be the latest: no older creatinine stands in for it
    assert result.profile.labs.scr is None
    assert "labs.scr: the latest result is unusable; left unknown" in result.texts()
    diet = {"resourceType": "NutritionOrder", "id": "diet", "status": "draft"}  # not read
    with pytest.raises(ProfileError) as caught:
        parse_resources([*resources(), diet, "junk"], "bundle.entry")
    assert caught.value.problems == [
        "bundle.entry[15]: resource: not a FHIR resource (no resourceType)"
    ]


def test_an_r5_medication_request_is_skipped_and_the_list_is_not_complete() -> None:
    r5 = {
        "resourceType": "MedicationRequest",
        "id": "r5",
        "status": "active",
        "intent": "order",
        "subject": {"reference": "Patient/pt-breast-1"},
        "medication": {"concept": {"text": "zoledronic acid"}},
    }
    result = mapped(resources(r5), complete=frozenset({"medications"}))
    assert (
        "MedicationRequest/r5: no medicationCodeableConcept or medicationReference; not used"
        in result.texts()
    )
    assert result.profile.meds.current_bma is None  # unknown, not "none"


def test_data_of_another_patient_is_refused() -> None:
    other = observation(
        "o-x", "2160-0", 1.0, "mg/dL", subject={"reference": "Patient/someone-else"}
    )
    with pytest.raises(
        ProfileError, match="Observation/o-x: subject: refers to another patient"
    ) as caught:
        mapped(resources(other), patient_id="pt-breast-1")
    assert "someone-else" not in str(caught.value)


def test_absent_data_stays_unknown() -> None:
    result = mapped(resources(drop=("o-preg", "ms-letrozole", "pr-dental")))
    assert result.profile.pregnant is None
    assert result.profile.meds.current_bma is None  # no medication data: unknown, not "none"
    assert result.profile.dental.days_since_invasive_procedure is None
    complete = mapped(resources(drop=("ms-letrozole",)), complete=frozenset({"medications"}))
    assert complete.profile.meds.current_bma == []


def test_not_final_observations_and_refuted_conditions_are_ignored() -> None:
    prelim = observation(
        "o-prelim", "2160-0", 5.0, "mg/dL", status="preliminary", effectiveDateTime="2026-11-23"
    )
    refuted = condition(
        "c-cord",
        ICD10CM,
        "G95.20",
        verificationStatus={"coding": [{"code": "refuted"}]},
    )
    profile = mapped(resources(prelim, refuted)).profile
    assert profile.labs.scr is not None
    assert profile.labs.scr.value == 1.3
    assert profile.neuro.cord_compression is None


@pytest.mark.parametrize(
    ("coded", "expected"),
    [
        ([condition("c1", ICD10CM, "G9520")], {"neuro": {"cord_compression": True}}),  # dotless
        (
            [condition("c1", "http://hl7.org/fhir/sid/icd-10", "C79.5")],
            {"bone": {"metastases_present": True}},
        ),
        (
            [
                condition(
                    "c1",
                    SNOMED,
                    "128462008",
                    bodySite=[{"coding": [{"system": SNOMED, "code": "85050009"}]}],
                )
            ],
            {"bone": {"metastases_present": True, "sites": ["humerus"], "long_bone_lesion": True}},
        ),
        ([condition("c1", SNOMED, "128462008")], {}),  # secondary cancer, no bone site
        ([condition("c1", ICD10CM, "M87.180")], {"dental": {"mronj_status": "active"}}),
        ([condition("c1", ICD10CM, "Z33.1")], {"pregnant": True}),
        ([condition("c1", "urn:local", "C79.51")], {}),  # a code without a known system
    ],
)
def test_condition_codes(coded: list[dict[str, Any]], expected: dict[str, Any]) -> None:
    profile = mapped(coded).profile
    assert profile.model_dump(exclude_none=True, exclude_defaults=True) == expected


@pytest.mark.parametrize(
    ("codes", "site"),
    [
        ([(ICD10CM, "C61")], "prostate"),
        ([(ICD10CM, "C34.90")], None),  # lung cancer without subtype
        ([(ICD10CM, "C34.90"), (SNOMED, "254637007")], "lung_nsclc"),
        (
            [(ICD10CM, "C34.90"), ("http://terminology.hl7.org/CodeSystem/icd-o-3", "8041/3")],
            "lung_sclc",
        ),
        (
            [(ICD10CM, "C41.2"), ("http://terminology.hl7.org/CodeSystem/icd-o-3", "9180/3")],
            "osteosarcoma",
        ),
        ([(ICD10CM, "C90.00")], "myeloma"),
    ],
)
def test_primary_site(codes: list[tuple[str, str]], site: str | None) -> None:
    # One Condition may carry several codings (ICD-10-CM with SNOMED or ICD-O-3 morphology).
    coded = [condition("c1", *codes[0])]
    coded[0]["code"]["coding"] += [{"system": system, "code": code} for system, code in codes[1:]]
    result = mapped(coded)
    assert result.profile.primary.site == site
    if site is None:
        assert any("primary.site unknown" in note for note in result.texts())


def test_two_primary_cancers_leave_the_site_unknown() -> None:
    result = mapped([condition("c1", ICD10CM, "C61"), condition("c2", ICD10CM, "C50.911")])
    assert result.profile.primary.site is None
    assert "several primary cancers coded: primary.site unknown" in result.texts()


def test_partial_birth_date_leaves_age_unknown() -> None:
    items = resources()
    items[0]["birthDate"] = "1968"
    result = mapped(items)
    assert result.profile.age_years is None
    assert "Patient.birthDate is a partial date: age left unknown" in result.texts()


def test_egfr_is_not_used_as_creatinine_clearance() -> None:
    result = mapped(resources())
    assert result.profile.labs.crcl_ml_min is None
    assert (
        "Observation/o-egfr: LOINC 98979-8 not used: eGFR is not a Cockcroft-Gault CrCl"
        in result.texts()
    )


@pytest.mark.parametrize(
    ("medication", "expected"),
    [
        (
            {
                "medicationCodeableConcept": {
                    "coding": [
                        {"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "77655"}
                    ]
                }
            },
            "zoledronic_acid",
        ),
        (
            {
                "medicationCodeableConcept": {
                    "coding": [{"system": "http://www.whocc.no/atc", "code": "M05BX04"}]
                }
            },
            "denosumab",
        ),
        ({"medicationCodeableConcept": {"text": "Xgeva 120 mg/1.7 mL"}}, "denosumab"),
        ({"medicationCodeableConcept": {"text": "唑来膦酸注射液 4 mg"}}, "zoledronic_acid"),
        (
            {"medicationCodeableConcept": {"coding": [{"system": "urn:other", "code": "77655"}]}},
            None,
        ),
        (
            {
                "contained": [
                    {
                        "resourceType": "Medication",
                        "id": "m1",
                        "code": {"text": "pamidronate disodium"},
                    }
                ],
                "medicationReference": {"reference": "#m1"},
            },
            "pamidronate",
        ),
        (
            {
                "medicationReference": {
                    "reference": "Medication/x",
                    "display": "IBANDRONIC ACID 6 MG",
                }
            },
            "ibandronate",
        ),
        ({"medicationCodeableConcept": {"text": "amoxicillin"}}, None),
        # Synthea's displays (RxNorm product codes not in the table): read by name.
        (
            {"medicationCodeableConcept": {"text": "1 ML DOCEtaxel 20 MG/ML Injection"}},
            "chemotherapy",
        ),
        (
            {"medicationCodeableConcept": {"text": "10 ML oxaliplatin 5 MG/ML Injection"}},
            "chemotherapy",
        ),
        ({"medicationCodeableConcept": {"text": "Leucovorin 100 MG Injection"}}, None),
        ({"medicationCodeableConcept": {"text": "Etoposide 100 MG Injection"}}, "chemotherapy"),
        ({"medicationCodeableConcept": {"text": "predniSONE 5 MG Oral Tablet"}}, "corticosteroid"),
        ({"medicationCodeableConcept": {"text": "Hydrocortisone 10 MG/ML Topical Cream"}}, None),
        ({"medicationCodeableConcept": {"text": "Methotrexate 10 MG Oral Tablet"}}, None),
    ],
)
def test_drugs_are_identified_by_code_system_and_name(
    medication: dict[str, Any], expected: str | None
) -> None:
    assert identify_drug(medication, {}) == expected


def test_active_bone_agents_and_risk_modifiers_become_medication_fields() -> None:
    def statement(ident: str, text: str, status: str = "active") -> dict[str, Any]:
        return {
            "resourceType": "MedicationStatement",
            "id": ident,
            "status": status,
            "subject": {"reference": "Patient/pt-breast-1"},
            "medicationCodeableConcept": {"text": text},
        }

    items = [
        statement("a", "denosumab"),
        statement("b", "bevacizumab"),
        statement("c", "zoledronic acid", "stopped"),
    ]
    meds = mapped(items).profile.meds
    assert meds.current_bma == ["denosumab"]
    assert meds.antiangiogenic is True
    assert meds.corticosteroid is None


def test_draft_orders_are_read_leniently() -> None:
    # The hook library's R4 example: NutritionOrder without intent, doseAndRate as an object.
    context = json.loads((EXAMPLES / "order-sign-context-r4.json").read_text())["context"]
    drafts = read_draft_orders(context["draftOrders"], None, {})
    assert (drafts.orders, drafts.agents, drafts.problems) == ([], set(), [])
    zoledronic = copy.deepcopy(context["draftOrders"]["entry"][1])
    zoledronic["resource"].update(
        id="zol", medicationCodeableConcept={"text": "zoledronic acid 4 mg"}
    )
    context["draftOrders"]["entry"].append(zoledronic)
    drafts = read_draft_orders(context["draftOrders"], None, {})
    assert [(o.reference, o.agent, o.dose_mg) for o in drafts.orders] == [
        ("MedicationRequest/zol", "zoledronic_acid", None)
    ]
    assert drafts.problems == [
        "draftOrders MedicationRequest/zol: dosageInstruction.0.doseAndRate: "
        "Input should be a valid list"
    ]


def test_unresolved_medication_references_are_reported() -> None:
    context = json.loads((EXAMPLES / "order-sign-context-medicationreference.json").read_text())[
        "context"
    ]
    drafts = read_draft_orders(context["draftOrders"], None, {})
    assert drafts.orders == []
    assert len(drafts.problems) == 2
    assert all(
        p.endswith("medicationReference: not resolved; drug read from its display text")
        for p in drafts.problems
    )


def test_a_planned_dental_extraction_in_the_drafts_is_found() -> None:
    request = {
        "resourceType": "ServiceRequest",
        "status": "draft",
        "intent": "order",
        "code": {"text": "Surgical tooth extraction"},
        "subject": {"reference": "Patient/1"},
    }
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": request}]}
    assert read_draft_orders(bundle, None, {}).dental_planned is True


def test_bundle_timestamp_sets_the_reference_date() -> None:
    later = {**BUNDLE, "timestamp": "2036-11-23T00:00:00Z"}
    assert bundle_to_profile(later).age_years == 68.0
    with pytest.raises(ProfileError, match=r"Bundle\.timestamp: not a FHIR instant"):
        bundle_to_profile({**BUNDLE, "timestamp": "soon"})


def test_driver_results_are_read_per_gene() -> None:
    def variant(ident: str, gene: str, answer: str, date: str) -> dict[str, Any]:
        studied = {
            "code": {"coding": [{"system": LOINC, "code": "48018-6"}]},
            "valueCodeableConcept": {
                "coding": [{"system": "http://www.genenames.org", "code": gene}]
            },
        }
        return {
            "resourceType": "Observation",
            "id": ident,
            "status": "final",
            "code": {"coding": [{"system": LOINC, "code": "69548-6"}]},
            "effectiveDateTime": date,
            "valueCodeableConcept": {"coding": [{"system": LOINC, "code": answer}]},
            "component": [studied],
        }

    items = [
        variant("egfr-old", "HGNC:3236", "LA9634-2", "2025-01-01"),
        variant("egfr-new", "HGNC:3236", "LA9633-4", "2026-06-01"),
        variant("alk", "HGNC:427", "LA9634-2", "2026-06-01"),
    ]
    drivers = mapped(items).profile.drivers
    assert (drivers.egfr, drivers.alk) == ("positive", "negative")


def test_unrecognised_medicines_are_listed_not_dropped() -> None:
    metformin = {
        "resourceType": "MedicationStatement",
        "id": "ms-metformin",
        "status": "active",
        "subject": {"reference": "Patient/pt-breast-1"},
        "medicationCodeableConcept": {"text": "metformin"},
    }
    assert mapped(resources(metformin)).texts()[-1] == (
        "medicines not recognised as a BMA or listed risk factor: MedicationStatement/ms-metformin"
    )


@pytest.mark.parametrize("reference", ["#med2", "Medication/med2"])
def test_a_resolved_medication_reference_to_another_medicine_is_listed(reference: str) -> None:
    """US Core's contained and referenced Axid: the Medication is read, so the medicine is
    known (not a bone agent): listed by name, and the list stays complete."""
    axid = {
        "resourceType": "Medication",
        "id": "med2",
        "code": {"coding": [{"system": RXNORM, "code": "582620"}], "text": "Nizatidine"},
    }
    request: dict[str, Any] = {
        "resourceType": "MedicationRequest",
        "id": "mr-axid",
        "status": "active",
        "intent": "order",
        "subject": {"reference": "Patient/pt-breast-1"},
        "medicationReference": {"reference": reference},
    }
    if reference.startswith("#"):
        request["contained"] = [axid]
    items = resources(request) if reference.startswith("#") else resources(request, axid)
    result = mapped(items, complete=frozenset({"medications"}))
    assert result.profile.meds.current_bma == []
    assert not any(n.startswith("medication list incomplete") for n in result.texts())
    assert "MedicationRequest/mr-axid" in result.texts()[-1]
    assert result.texts()[-1].startswith("medicines not recognised")


def test_systemic_therapy_classes_receptors_and_a_stopped_bma_are_mapped() -> None:
    er = observation("o-er", "85337-4", 0, "1")
    del er["valueQuantity"]
    er["valueCodeableConcept"] = {"coding": [{"system": LOINC, "code": "LA6576-8"}]}
    stopped = {
        "resourceType": "MedicationRequest",
        "id": "mr-zol-old",
        "status": "stopped",
        "intent": "order",
        "subject": {"reference": "Patient/pt-breast-1"},
        "medicationCodeableConcept": {"coding": [{"system": RXNORM, "code": "77655"}]},
    }
    profile = mapped(resources(er, stopped)).profile
    assert profile.meds.systemic_therapy == ["aromatase_inhibitor"]  # letrozole
    assert profile.drivers.er == "positive"
    assert profile.meds.previous_bma.agent == "zoledronic_acid"


# ---- issue 11 item 8 and issue 13: real EHR shapes are noted and skipped, never a crash ----------

LATEST = "2026-11-23"  # later than every observation of the sample


def _condition_at(ident: str, code: str, *sites: str) -> dict[str, Any]:
    body = [{"coding": [{"system": SNOMED, "code": site}]} for site in sites]
    return condition(ident, SNOMED, code, bodySite=body)


def test_a_metastasis_at_a_non_bone_site_is_a_note_not_a_crash() -> None:
    lung = _condition_at("c-lung-met", "128462008", "39607008")
    result = mapped(resources(lung, drop=("c-bone",)))
    assert result.profile.bone.metastases_present is None
    assert (
        "Condition/c-lung-met: metastasis outside bone (lung): lesion count unknown"
        in result.texts()
    )


def test_a_spine_metastasis_sets_spine_involved() -> None:
    spine = _condition_at("c-spine", "128462008", "421060004")
    profile = mapped(resources(spine, drop=("c-bone",))).profile
    assert profile.bone.metastases_present is True
    assert profile.bone.spine_involved is True
    assert profile.bone.sites == ["spine"]


def test_a_bone_site_outside_the_table_is_read_from_its_text() -> None:
    site = {"coding": [{"system": SNOMED, "code": "000000"}], "text": "Bone structure of tibia"}
    tibia = condition("c-tibia", SNOMED, "128462008", bodySite=[site])
    assert mapped(resources(tibia, drop=("c-bone",))).profile.bone.metastases_present is True


@pytest.mark.parametrize(
    ("code", "site"),
    [("254837009", "breast"), ("353431000119107", "breast"), ("424132000", "lung_nsclc")],
)
def test_snomed_primaries_of_published_examples_are_mapped(code: str, site: str) -> None:
    primary = condition("c-snomed", SNOMED, code)
    profile = mapped(resources(primary, drop=("c-primary",))).profile
    assert profile.primary.site == site


@pytest.mark.parametrize("code", ["93761005", "109838007", "363406005"])
def test_synthea_colon_cancer_codes_are_a_colorectal_primary(code: str) -> None:
    primary = condition("c-colon", SNOMED, code)
    profile = mapped(resources(primary, drop=("c-primary",))).profile
    assert profile.primary.site == "colorectal"


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        ("126906006", "neoplasm of unspecified behaviour: primary.site not set from it"),
        ("92691004", "carcinoma in situ, not invasive: primary.site not set from it"),
        ("162573006", "a suspected diagnosis: not used"),
    ],
)
def test_synthea_neoplasm_in_situ_and_suspected_codes_are_notes_with_a_reason(
    code: str, reason: str
) -> None:
    """Synthea's prostate and lung codes that are not an invasive cancer: the reason is said."""
    item = condition("c-syn", SNOMED, code)
    item["code"]["coding"][0]["display"] = "Synthea display"
    result = mapped(resources(item, drop=("c-primary",)))
    assert result.profile.primary.site is None
    assert f"Condition/c-syn (Synthea display): {reason}" in result.texts()


@pytest.mark.parametrize(
    "broken",
    [
        {"subject": {"reference": None}},
        {"code": {"coding": [{"system": SNOMED, "code": None}]}},
        {"code": {"coding": None}},
        {"code": {"coding": [None, "x"]}},
        {"bodySite": [{"coding": None}, {}]},
        {"clinicalStatus": {"coding": [{"code": None}]}},
        {"extension": [{"url": "x", "valueCodeableConcept": {"coding": None}}]},
    ],
)
def test_odd_condition_shapes_never_crash(broken: dict[str, Any]) -> None:
    item = {**condition("c-odd", SNOMED, "94222008"), **broken}
    result = mapped(resources(item))  # a profile with notes, or the resource skipped
    assert result.profile.primary.site == "breast"


@pytest.mark.parametrize(
    "repeat",
    [[{"period": 4}], {"period": "4", "periodUnit": "wk"}, {"period": 4, "periodUnit": 3}, "x"],
)
def test_a_timing_repeat_of_another_shape_is_no_interval(repeat: Any) -> None:
    request = {"dosageInstruction": [{"timing": {"repeat": repeat}}]}
    assert dosing_interval_weeks(request) is None
    assert dosing_interval_weeks({"dosageInstruction": [{"timing": repeat}]}) is None
    assert dosing_interval_weeks({"dosageInstruction": "x"}) is None


@pytest.mark.parametrize(
    "dosage",
    [
        {"doseAndRate": [{"doseQuantity": {"value": "4", "code": "mg"}}]},
        {"doseAndRate": [{"doseQuantity": {"value": {}, "code": "mg"}}]},
        {"doseAndRate": [{"doseQuantity": {"value": "", "code": "mg"}}]},
        {"doseAndRate": [{"doseQuantity": {}}]},
        {"doseAndRate": ["4 mg"]},
        {"doseAndRate": "4 mg"},
        {"doseAndRate": [None]},
        "4 mg",
    ],
)
def test_a_draft_dose_of_another_shape_is_no_dose(dosage: Any) -> None:
    order = {
        "resourceType": "MedicationRequest",
        "id": "zol",
        "status": "draft",
        "intent": "order",
        "medicationCodeableConcept": {"text": "zoledronic acid"},
        "subject": {"reference": "Patient/pt-breast-1"},
        "dosageInstruction": [dosage],
    }
    drafts = read_draft_orders({"resourceType": "Bundle", "entry": [{"resource": order}]}, None, {})
    assert [(o.agent, o.dose_mg) for o in drafts.orders] == [("zoledronic_acid", None)]
    assert dose_mg(order) is None


@pytest.mark.parametrize(
    "reference",
    [
        "Patient/pt-breast-1",
        "Patient/pt-breast-1/_history/3",
        "https://ehr.example.org/fhir/Patient/pt-breast-1",
        "https://ehr.example.org/fhir/Patient/pt-breast-1/_history/3",
        "urn:uuid:pt-breast-1",  # the sample's fullUrl for its Patient
    ],
)
def test_every_reference_form_to_the_patient_is_accepted(reference: str) -> None:
    bundle = copy.deepcopy(BUNDLE)
    for entry in bundle["entry"]:
        if "subject" in entry["resource"]:
            entry["resource"]["subject"] = {"reference": reference}
    mapping = bundle_mapping(bundle, "sample")
    assert mapping.profile.labs.scr == Quantity(value=1.3, unit="mg/dL")
    assert not [n for n in mapping.texts() if "subject" in n]


@pytest.mark.parametrize(
    "reference",
    [
        "Patient/someone-else",
        "Patient/someone-else/_history/1",
        "https://ehr.example.org/fhir/Patient/someone-else",
        "urn:uuid:other",  # a fullUrl in the Bundle that is another Patient
    ],
)
def test_another_patient_is_refused_whatever_the_reference_form(reference: str) -> None:
    bundle = copy.deepcopy(BUNDLE)
    other = {"resourceType": "Patient", "id": "someone-else"}
    bundle["entry"].append({"fullUrl": "urn:uuid:other", "resource": other})
    scr = observation("o-x", "2160-0", 9.9, "mg/dL", effectiveDateTime=LATEST)
    scr["subject"] = {"reference": reference}
    bundle["entry"].append({"resource": scr})
    with pytest.raises(ProfileError) as caught:
        bundle_mapping(bundle, "sample")
    assert "sample:" in str(caught.value)


@pytest.mark.parametrize("reference", ["urn:uuid:unknown", "#p1", "Group/g1"])
def test_an_unresolvable_subject_is_skipped_with_a_note(reference: str) -> None:
    scr = observation("o-x", "2160-0", 9.9, "mg/dL", effectiveDateTime=LATEST)
    scr["subject"] = {"reference": reference}
    result = mapped(resources(scr), patient_id="pt-breast-1")
    assert result.profile.labs.scr == Quantity(value=1.3, unit="mg/dL")  # not 9.9
    assert (
        "Observation/o-x: subject: reference not resolved to a Patient; not used" in result.texts()
    )


def test_a_urn_uuid_subject_without_its_entry_is_the_patient_of_that_id() -> None:
    """A prefetch built from a Synthea transaction: `urn:uuid:<Patient.id>` subjects, no
    fullUrls. The Patient of that id is this record's; another uuid stays unresolved."""
    scr = observation("o-x", "2160-0", 9.9, "mg/dL", effectiveDateTime=LATEST)
    scr["subject"] = {"reference": "urn:uuid:pt-breast-1"}
    assert mapped(resources(scr), patient_id="pt-breast-1").profile.labs.scr.value == 9.9
    other = {**scr, "id": "o-y", "subject": {"reference": "urn:uuid:someone-else"}}
    result = mapped(resources(other), patient_id="pt-breast-1")
    assert result.profile.labs.scr.value == 1.3
    assert (
        "Observation/o-y: subject: reference not resolved to a Patient; not used" in result.texts()
    )


@pytest.mark.parametrize(
    "deceased", [{"deceasedBoolean": True}, {"deceasedDateTime": "1989-05-01"}]
)
def test_a_deceased_patient_is_refused_clearly(deceased: dict[str, Any]) -> None:
    patient = {**resources()[0], **deceased}
    with pytest.raises(ProfileError, match="recorded as deceased"):
        mapped([patient, *resources()[1:]])


def test_an_unresolved_medication_reference_makes_the_list_unknown_not_empty() -> None:
    request = {
        "resourceType": "MedicationRequest",
        "id": "mr-ref",
        "status": "active",
        "intent": "order",
        "subject": {"reference": "Patient/pt-breast-1"},
        "medicationReference": {"reference": "Medication/not-here"},
    }
    result = mapped(resources(request), complete=frozenset({"medications"}))
    assert result.profile.meds.current_bma is None
    assert any(n.startswith("medication list incomplete") for n in result.texts())


def test_a_bundle_with_an_unread_next_page_has_no_complete_medication_list() -> None:
    bundle = {**copy.deepcopy(BUNDLE), "link": [{"relation": "next", "url": "https://x/p2"}]}
    assert bundle_mapping(bundle, "sample").profile.meds.current_bma is None
    assert bundle_to_profile(BUNDLE, "sample").meds.current_bma == []


def test_a_transaction_bundle_with_request_only_entries_is_read() -> None:
    bundle = copy.deepcopy(BUNDLE)
    bundle["type"] = "transaction"
    bundle["entry"].append({"request": {"method": "DELETE", "url": "Observation/o-gone"}})
    mapping = bundle_mapping(bundle, "sample")
    assert mapping.profile.primary.site == "breast"
    assert any("DELETE request without a resource" in n for n in mapping.texts())


def test_mcode_performance_stage_chemotherapy_and_lab_codes() -> None:
    ecog = {
        "resourceType": "Observation",
        "id": "o-ecog-la",
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": "89247-1"}]},
        "effectiveDateTime": LATEST,
        "valueCodeableConcept": {"coding": [{"system": LOINC, "code": "LA9623-5"}]},
    }
    stage = {
        "resourceType": "Observation",
        "id": "o-stage",
        "status": "final",
        "code": {"coding": [{"system": SNOMED, "code": "399537006"}]},
        "valueCodeableConcept": {
            "coding": [
                {
                    "system": SNOMED,
                    "code": "1222769001",
                    "display": "American Joint Committee on Cancer stage IIB (qualifier value)",
                }
            ]
        },
    }
    chemo = {
        "resourceType": "MedicationRequest",
        "id": "mr-pac",
        "status": "active",
        "intent": "order",
        "subject": {"reference": "Patient/pt-breast-1"},
        "medicationCodeableConcept": {"coding": [{"system": RXNORM, "code": "56946"}]},
    }
    synthea_scr = observation("o-synthea", "38483-4", 1.1, "mg/dL")
    result = mapped(resources(ecog, stage, chemo, synthea_scr))
    assert result.profile.ecog == 1
    assert result.profile.primary.stage_group == "II"
    assert result.profile.meds.chemotherapy is True
    assert any(
        n.startswith("Observation/o-synthea: LOINC 38483-4 not used") for n in result.texts()
    )


def test_the_prefetch_templates_ask_for_every_code_the_mapping_reads_or_reports() -> None:
    from bonecds.cds_hooks._models import PREFETCH
    from bonecds.fhir.codes import (
        DISEASE_STATUS_LOINC,
        ECOG_LOINC,
        KARNOFSKY_LOINC,
        LOINC_LABS,
        NOT_USED_LOINC,
        RECEPTOR_LOINC,
        TNM_STAGE_GROUP,
        UNMAPPED_LAB_LOINC,
        VARIANT_LOINC,
    )

    asked = " ".join(PREFETCH.values())
    loinc = {*LOINC_LABS, *NOT_USED_LOINC, *UNMAPPED_LAB_LOINC, *RECEPTOR_LOINC}
    loinc |= {ECOG_LOINC, KARNOFSKY_LOINC, DISEASE_STATUS_LOINC, VARIANT_LOINC, "82810-3"}
    assert [c for c in sorted(loinc) if f"{LOINC}|{c}" not in asked] == []
    assert [c for c in sorted(TNM_STAGE_GROUP) if f"{SNOMED}|{c}" not in asked] == []


@pytest.mark.parametrize("value", [float("nan"), float("inf"), True, "1.3"])
def test_a_value_that_is_not_a_finite_number_is_noted_not_used(value: Any) -> None:
    item = observation("o-odd", "2160-0", 1.0, "mg/dL", effectiveDateTime=LATEST)
    item["valueQuantity"]["value"] = value
    result = mapped(resources(item))
    assert result.profile.labs.scr is None  # the latest creatinine is unusable: unknown
    assert any(n.startswith("Observation/o-odd: valueQuantity.value") for n in result.texts())


def test_histology_of_the_primary_from_icdo3_or_snomed_text() -> None:
    icdo3 = {
        "url": "x-histology",
        "valueCodeableConcept": {"coding": [{"system": ICDO3, "code": "8500/3"}]},
    }
    primary = condition("c-primary-2", ICD10CM, "C50.912", extension=[icdo3])
    profile = mapped(resources(primary, drop=("c-primary",))).profile
    assert profile.primary.histology_icdo3 == "8500/3"
    text = {
        "url": "x-histology",
        "valueCodeableConcept": {
            "coding": [
                {"system": SNOMED, "code": "82711006", "display": "Infiltrating duct carcinoma"}
            ]
        },
    }
    primary = condition("c-primary-3", ICD10CM, "C50.912", extension=[text])
    assert (
        mapped(resources(primary, drop=("c-primary",))).profile.primary.histology
        == "Infiltrating duct carcinoma"
    )


@pytest.mark.parametrize(
    ("score", "ecog"), [(100, 0), (90, 1), (80, 1), (70, 2), (60, 3), (50, 3), (40, 4), (10, 4)]
)
def test_karnofsky_gives_a_computed_ecog_when_none_is_recorded(score: int, ecog: int) -> None:
    kps = {
        "resourceType": "Observation",
        "id": "o-kps",
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": "89243-0"}]},
        "effectiveDateTime": LATEST,
        "valueInteger": score,
    }
    result = mapped(resources(kps, drop=("o-ecog",)))
    assert result.profile.ecog == ecog
    assert any(n.startswith("ecog: computed from the Karnofsky score") for n in result.texts())
    assert mapped(resources(kps)).profile.ecog == 1  # a recorded ECOG wins


@pytest.mark.parametrize("code", [["77655"], {"value": "77655"}, 77655, None])
def test_a_medicine_code_of_another_shape_is_not_recognised_and_never_crashes(code: Any) -> None:
    # The fuzzer's last HTTP 500s: a `coding.code` that is a list or object is unhashable.
    statement = {
        "resourceType": "MedicationStatement",
        "id": "ms-odd",
        "status": "active",
        "subject": {"reference": "Patient/pt-breast-1"},
        "medicationCodeableConcept": {"coding": [{"system": RXNORM, "code": code}]},
    }
    assert identify_drug(statement, {}) is None
    assert mapped(resources(statement)).profile is not None
    odd_system = {"coding": [{"system": {"url": RXNORM}, "code": "77655"}]}
    assert identify_drug({**statement, "medicationCodeableConcept": odd_system}, {}) is None


@pytest.mark.parametrize(
    ("snomed", "status"),
    [("268910001", "responding"), ("359746009", "stable"), ("271299001", "progressing")],
)
def test_cancer_disease_status_is_the_profiles_disease_status(snomed: str, status: str) -> None:
    observed = observation("o-status", "97509-4", 0, "1")
    del observed["valueQuantity"]
    observed["valueCodeableConcept"] = {"coding": [{"system": SNOMED, "code": snomed}]}
    assert mapped(resources(observed)).profile.disease_status == status


def test_an_undetermined_cancer_disease_status_is_a_note() -> None:
    observed = observation("o-status", "97509-4", 0, "1")
    del observed["valueQuantity"]
    observed["valueCodeableConcept"] = {"coding": [{"system": SNOMED, "code": "709137006"}]}
    result = mapped(resources(observed))
    assert result.profile.disease_status is None
    assert "Observation/o-status: cancer disease status 'undetermined': not used" in result.texts()
