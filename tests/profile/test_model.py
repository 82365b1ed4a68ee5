"""The patient profile: strict validation, units, derived values with their inputs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bonecds import ProfileError, load_profile
from bonecds.engine.facts import to_facts
from bonecds.knowledge.model import ReferenceDefaults
from bonecds.profile.model import PatientProfile, parse_profile

DEFAULTS = ReferenceDefaults(
    calcium_lln_mg_dl=8.9,
    calcium_uln_mg_dl=10.5,
    calcium_ionised_lln_mg_dl=4.69,
    calcium_ionised_uln_mg_dl=5.21,
)


def facts_of(data: dict[str, Any]) -> dict[str, Any]:
    return to_facts(parse_profile(data), DEFAULTS).values


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"ecog": 7}, "ecog"),
        ({"spine": {"sins": 19}}, "spine.sins"),
        ({"long_bone": {"mirels": 3}}, "long_bone.mirels"),
        ({"bone": {"lesion_count": -1}}, "bone.lesion_count"),
        ({"mets": {"total_lesion_count": -2}}, "mets.total_lesion_count"),
        ({"age_years": 130}, "age_years"),
        ({"labs": {"calcium_total": {"value": 2.4, "unit": "mg/L"}}}, "labs.calcium_total"),
        ({"labs": {"scr": 1.1}}, "labs.scr"),
        ({"labs": {"albumin": "35 g/dl"}}, "labs.albumin"),
        ({"ecog": "2"}, "ecog"),
        ({"ecog": True}, "ecog"),
        ({"pregnant": "yes"}, "pregnant"),
        ({"primary": {"site": "brest"}}, "primary.site"),
        ({"primary": {"sit": "breast"}}, "primary.sit"),
        ({"creatinine": 1.0}, "creatinine"),
        ({"dental": {"risk_factors": ["smoker"]}}, "dental.risk_factors.0"),
    ],
)
def test_invalid_values_name_the_field(data: dict[str, Any], field: str) -> None:
    with pytest.raises(ProfileError) as caught:
        parse_profile(data)
    assert any(f": {field}: " in problem for problem in caught.value.problems), (
        caught.value.problems
    )


def test_unknown_field_suggests_a_close_name() -> None:
    with pytest.raises(ProfileError) as caught:
        parse_profile({"labs": {"crcl_ml_mn": 40}, "ecgo": 1})
    problems = " ".join(caught.value.problems)
    assert "labs.crcl_ml_mn: unknown field; did you mean 'crcl_ml_min'?" in problems
    assert "ecgo: unknown field; did you mean 'ecog'?" in problems


def test_errors_never_echo_the_patient_value() -> None:
    with pytest.raises(ProfileError) as caught:
        parse_profile({"ecog": 987654, "age_years": 123456})
    assert "987654" not in str(caught.value.problems)
    assert "123456" not in str(caught.value.problems)


def test_file_errors_carry_the_line(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("age_years: 70\nspine:\n  sins: 21\n", encoding="utf-8")
    with pytest.raises(ProfileError) as caught:
        load_profile(path)
    assert caught.value.problems == [f"{path}:3:3: spine.sins: outside the plausible range 0-18"]


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("age_years: 70\nage_years: 71\n", ":2:1: duplicate key 'age_years'"),
        ("age_years: [70\n", ":2:1:"),
        ('{"age_years": 70,}', ":1:18: malformed JSON"),
    ],
)
def test_malformed_files_are_refused_with_position(tmp_path: Path, text: str, where: str) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ProfileError) as caught:
        load_profile(path)
    assert where in caught.value.problems[0]


def test_units_are_converted_to_the_canonical_unit() -> None:
    values = facts_of(
        {
            "labs": {
                "calcium_total": {"value": 2.5, "unit": "mmol/L"},
                "scr": "88.4 umol/L",
                "albumin": {"value": 35, "unit": "g/L"},
            }
        }
    )
    assert values["labs.calcium_total_mg_dl"] == 10.02
    assert values["labs.scr_mg_dl"] == 1.0
    assert values["labs.albumin_g_dl"] == 3.5


def test_corrected_calcium_is_shown_with_its_inputs() -> None:
    profile = parse_profile(
        {
            "labs": {"calcium_total": "8.0 mg/dL", "albumin": "2.0 g/dL"},
        }
    )
    facts = to_facts(profile, DEFAULTS)
    assert facts.values["derived.corrected_calcium_mg_dl"] == 9.6
    (derived,) = [d for d in facts.derived if d.field == "derived.corrected_calcium_mg_dl"]
    assert derived.inputs == {"labs.calcium_total_mg_dl": 8.0, "labs.albumin_g_dl": 2.0}
    assert "Payne" in derived.method


def test_si_and_conventional_calcium_give_the_same_grade() -> None:
    si = facts_of({"labs": {"calcium_total": "3.5 mmol/L", "albumin": "40 g/L"}})
    assert si["derived.corrected_calcium_mg_dl"] == 14.03  # 3.5 mmol/L = 14.03 mg/dL (brief)


@pytest.mark.parametrize(
    ("sex", "expected"),
    [("male", 68.06), ("female", 57.85)],
)
def test_cockcroft_gault_when_no_measured_clearance(sex: str, expected: float) -> None:
    facts = to_facts(
        parse_profile({"age_years": 70, "weight_kg": 70, "sex": sex, "labs": {"scr": "1.0 mg/dL"}}),
        DEFAULTS,
    )
    assert facts.values["derived.crcl_ml_min"] == expected
    assert facts.values["derived.crcl_source"] == "computed"
    (derived,) = [d for d in facts.derived if d.field == "derived.crcl_ml_min"]
    assert "Cockcroft-Gault" in derived.method


def test_measured_clearance_wins_and_is_labelled() -> None:
    values = facts_of(
        {
            "age_years": 70,
            "weight_kg": 70,
            "sex": "male",
            "labs": {"scr": "1.0 mg/dL", "crcl_ml_min": 42},
        }
    )
    assert values["derived.crcl_ml_min"] == 42
    assert values["derived.crcl_source"] == "measured"


def test_clearance_is_unknown_when_an_input_is_missing() -> None:
    values = facts_of({"age_years": 70, "sex": "male", "labs": {"scr": "1.0 mg/dL"}})
    assert "derived.crcl_ml_min" not in values


def test_default_reference_range_is_flagged() -> None:
    assert facts_of({})["derived.calcium_reference_default"] is True
    assert facts_of({})["derived.calcium_lln_mg_dl"] == 8.9
    lab = facts_of({"labs": {"calcium_lln": "2.15 mmol/L"}})
    assert lab["derived.calcium_reference_default"] is False
    assert lab["derived.calcium_lln_mg_dl"] == 8.62


def test_unknown_is_absent_not_false() -> None:
    values = facts_of({"bone": {"spine_involved": False}})
    assert values["bone.spine_involved"] is False
    assert "bone.painful" not in values
    assert "pregnant" not in values


def test_lists_get_a_count() -> None:
    values = facts_of({"meds": {"current_bma": ["denosumab", "zoledronic_acid"]}})
    assert values["meds.current_bma.count"] == 2


def test_profile_is_immutable() -> None:
    profile = PatientProfile(ecog=1)
    with pytest.raises(ValueError, match="frozen"):
        profile.ecog = 2  # type: ignore[misc]


def _properties(schema: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Every (path, property schema) of the profile schema, nested groups included."""
    defs = schema["$defs"]
    found = []

    def walk(model: dict[str, Any], prefix: str) -> None:
        for name, prop in model["properties"].items():
            found.append((f"{prefix}{name}", prop))
            ref = prop.get("$ref", "")
            if ref and ref != "#/$defs/Quantity":
                walk(defs[ref.rsplit("/", 1)[1]], f"{prefix}{name}.")

    walk(schema, "")
    return found


def _has_description(prop: dict[str, Any], defs: dict[str, Any]) -> bool:
    ref = prop.get("$ref", "")
    return bool(prop.get("description") or (ref and defs[ref.rsplit("/", 1)[1]].get("description")))


def test_every_profile_field_is_described_and_quantities_carry_a_unit() -> None:
    schema = PatientProfile.model_json_schema()
    properties = _properties(schema)
    undescribed = [path for path, prop in properties if not _has_description(prop, schema["$defs"])]
    assert undescribed == []
    measured = [p for p, prop in properties if "Quantity" in str(prop.get("anyOf", ""))]
    assert measured
    assert all("unit" in dict(properties)[p] for p in measured)


def test_new_analytes_convert_to_their_canonical_unit() -> None:
    values = facts_of(
        {
            "labs": {
                "vitamin_d_25oh": "50 nmol/L",
                "magnesium": "0.8 mmol/L",
                "phosphate": "1.0 mmol/L",
            },
            "meds": {"bma_start_scr": "88.4 umol/L"},
        }
    )
    assert values["labs.vitamin_d_25oh_ng_ml"] == 20.03  # 50 / 2.496
    assert values["labs.magnesium_mg_dl"] == 1.94  # 0.8 x 2.431
    assert values["labs.phosphate_mg_dl"] == 3.1  # 1.0 x 3.097
    assert values["meds.bma_start_scr_mg_dl"] == 1.0


def test_pending_is_a_known_status_not_unknown() -> None:
    values = facts_of({"drivers": {"egfr": "pending", "her2": "not_tested"}})
    assert values["drivers.egfr"] == "pending"
    assert values["drivers.her2"] == "not_tested"
    assert "drivers.alk" not in values


def test_history_therapy_sites_and_bounds_reach_the_facts() -> None:
    values = facts_of(
        {
            "life_expectancy_months": 12,
            "life_expectancy_bound": "more_than",
            "meds": {
                "previous_bma": {"agent": "denosumab", "months_since_stop": 5, "doses_given": 24},
                "systemic_therapy": ["aromatase_inhibitor", "cdk46_inhibitor"],
                "bma_start_crcl_ml_min": 72,
            },
            "mets": {"liver_lesion_count": 3, "brain_lesion_count": 0},
            "bone": {"pathological_fracture": True, "prior_rt_to_lesion": False},
        }
    )
    assert values["meds.previous_bma.agent"] == "denosumab"
    assert values["meds.previous_bma.months_since_stop"] == 5
    assert values["meds.systemic_therapy.count"] == 2
    assert values["mets.brain_lesion_count"] == 0
    assert values["bone.prior_rt_to_lesion"] is False
    assert values["life_expectancy_bound"] == "more_than"


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"labs": {"magnesium": "0.8 mg/L"}}, "labs.magnesium"),
        ({"labs": {"vitamin_d_25oh": 30}}, "labs.vitamin_d_25oh"),
        ({"drivers": {"ros1": "unknown"}}, "drivers.ros1"),
        ({"meds": {"systemic_therapy": ["letrozole"]}}, "meds.systemic_therapy.0"),
        ({"meds": {"previous_bma": {"agent": "alendronate"}}}, "meds.previous_bma.agent"),
        ({"mets": {"liver_lesion_count": -1}}, "mets.liver_lesion_count"),
        ({"life_expectancy_bound": "about"}, "life_expectancy_bound"),
    ],
)
def test_new_fields_refuse_invalid_values(data: dict[str, Any], field: str) -> None:
    with pytest.raises(ProfileError) as caught:
        parse_profile(data)
    assert f": {field}: " in caught.value.problems[0]


def test_creatinine_rise_since_the_agent_started_is_derived_with_its_inputs() -> None:
    profile = parse_profile(
        {"labs": {"scr": "132.6 umol/L"}, "meds": {"bma_start_scr": "1.0 mg/dL"}}
    )
    facts = to_facts(profile, DEFAULTS)
    assert facts.values["derived.scr_rise_since_bma_start_mg_dl"] == 0.5
    (derived,) = [d for d in facts.derived if d.field == "derived.scr_rise_since_bma_start_mg_dl"]
    assert derived.inputs == {"labs.scr_mg_dl": 1.5, "meds.bma_start_scr_mg_dl": 1.0}
    assert "derived.scr_rise_since_bma_start_mg_dl" not in facts_of({"labs": {"scr": "1.5 mg/dL"}})
