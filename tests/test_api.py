"""The public API: a small explicit surface, and properties every report must have."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

import bonecds
from bonecds import Knowledge, ProfileError, Report, evaluate
from bonecds.api import evaluate_data
from bonecds.testing.scenarios import load_scenario
from tests.conftest import AS_OF, FIXTURES, ScenarioReport

SITES = ["breast", "prostate", "lung_nsclc", "renal", "myeloma", "gctb", "osteosarcoma", "other"]


# The public API, written out here and not derived from the package: adding or dropping a name
# is a change to the interface and must show up in this file.
PUBLIC_API = {
    "ENGINE_VERSION",
    "BonecdsError",
    "Diagnostic",
    "InputError",
    "InternalError",
    "Knowledge",
    "PatientProfile",
    "ProfileError",
    "Report",
    "RuleError",
    "WhyNot",
    "__version__",
    "evaluate",
    "load_knowledge",
    "load_profile",
    "why_not",
}

STAR_IMPORT = """
import json
from bonecds import *
print(json.dumps(sorted(name for name in dir() if not name.startswith("_") and name != "json")))
"""


def test_all_is_the_public_api() -> None:
    assert set(bonecds.__all__) == PUBLIC_API
    assert len(bonecds.__all__) == len(PUBLIC_API)  # no name listed twice


def test_star_import_gives_exactly_the_public_names() -> None:
    # A fresh interpreter: nothing this test session imported can stand in for a missing name.
    done = subprocess.run(
        [sys.executable, "-c", STAR_IMPORT], capture_output=True, text=True, check=True
    )
    assert set(json.loads(done.stdout)) == PUBLIC_API - {"__version__"}


@pytest.mark.parametrize("name", sorted(PUBLIC_API))
def test_each_public_name_is_its_home_modules_object_and_documented(name: str) -> None:
    value = getattr(bonecds, name)
    home = importlib.import_module(bonecds._HOMES[name])
    assert value is getattr(home, name)
    if callable(value):
        assert (value.__doc__ or "").strip(), f"{name} has no docstring"
    else:
        assert isinstance(value, str)
        assert value


def test_a_private_name_is_not_reachable_from_the_package() -> None:
    for name in ("run_engine", "compile_rules", "to_facts", "default_rules_dir"):
        assert not hasattr(bonecds, name), name
    with pytest.raises(AttributeError, match="no attribute 'run_engine'"):
        bonecds.run_engine  # type: ignore[attr-defined]  # noqa: B018


def test_evaluate_accepts_a_dict_and_validates_it(knowledge: Knowledge) -> None:
    with pytest.raises(ProfileError, match="ecog"):
        evaluate({"ecog": 9}, knowledge, AS_OF)


def test_report_json_round_trips(knowledge: Knowledge) -> None:
    report = evaluate(
        {"primary": {"site": "breast"}, "bone": {"metastases_present": True}}, knowledge, AS_OF
    )
    assert Report.model_validate(json.loads(report.to_json())) == report


def _canonical(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


@pytest.mark.parametrize("language", ["en", "zh"])
def test_plain_report_data_is_exactly_the_models(
    language: str, knowledge: Knowledge, scenario_report: ScenarioReport
) -> None:
    """Batch writes evaluate_data's plain data without building the Report: on every scenario
    it must be what the validated model gives, byte for byte (a missing default, an extra key
    or an int where the model has a float would differ)."""
    for path in sorted(FIXTURES.glob("*.yaml")):
        scenario, profile = load_scenario(path)
        data = evaluate_data(profile, knowledge, scenario.as_of, language=language)
        assert _canonical(data) == scenario_report(path, language).to_json(), path.name


def _optional(strategy: st.SearchStrategy[object]) -> st.SearchStrategy[object]:
    return st.none() | strategy


profiles = st.fixed_dictionaries(
    {},
    optional={
        "age_years": st.integers(5, 95),
        "sex": st.sampled_from(["female", "male"]),
        "weight_kg": st.integers(30, 130),
        "pregnant": st.booleans(),
        "skeletal_maturity": st.sampled_from(["mature", "immature"]),
        "ecog": st.integers(0, 4),
        "life_expectancy_months": st.sampled_from([1, 2.9, 3, 5.9, 6, 24]),
        "primary": st.fixed_dictionaries(
            {"site": st.sampled_from(SITES)},
            optional={"castration_resistant": st.booleans(), "controlled": st.booleans()},
        ),
        "bone": st.fixed_dictionaries(
            {},
            optional={
                "metastases_present": st.booleans(),
                "spine_involved": st.booleans(),
                "painful": st.booleans(),
                "long_bone_lesion": st.booleans(),
            },
        ),
        "mets": st.fixed_dictionaries({}, optional={"total_lesion_count": st.integers(0, 8)}),
        "labs": st.fixed_dictionaries(
            {},
            optional={
                "crcl_ml_min": st.sampled_from([10, 29.9, 30, 39.9, 40, 49.9, 50, 60, 60.1, 95]),
                "on_dialysis": st.booleans(),
                "calcium_total": st.sampled_from(
                    ["7.5 mg/dL", "9.5 mg/dL", "12.0 mg/dL", "3.5 mmol/L"]
                ),
                "albumin": st.sampled_from(["2.5 g/dL", "40 g/L"]),
            },
        ),
        "dental": st.fixed_dictionaries(
            {},
            optional={
                "exam_done": st.booleans(),
                "mronj_status": st.sampled_from(["none", "healed", "active"]),
                "days_since_invasive_procedure": st.integers(0, 40),
            },
        ),
        "meds": st.fixed_dictionaries(
            {},
            optional={
                "current_bma": st.lists(
                    st.sampled_from(["denosumab", "zoledronic_acid", "pamidronate"]),
                    max_size=2,
                    unique=True,
                )
            },
        ),
        "neuro": st.fixed_dictionaries(
            {},
            optional={
                "cord_compression": st.booleans(),
                "deficit": st.sampled_from(["none", "new", "established"]),
                "escc_grade": st.sampled_from(["0", "1b", "2", "3"]),
            },
        ),
        "spine": st.fixed_dictionaries({}, optional={"sins": st.integers(0, 18)}),
        "long_bone": st.fixed_dictionaries({}, optional={"mirels": st.integers(4, 12)}),
        "gctb": st.fixed_dictionaries(
            {},
            optional={
                "resectability": st.sampled_from(
                    ["resectable_acceptable_morbidity", "unresectable"]
                ),
                "on_denosumab": st.booleans(),
            },
        ),
    },
)


@settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(profile=profiles)
def test_report_invariants(profile: dict[str, Any], knowledge: Knowledge) -> None:
    report = evaluate(profile, knowledge, AS_OF)
    assert evaluate(profile, knowledge, AS_OF).to_json() == report.to_json()
    assert _canonical(evaluate_data(profile, knowledge, AS_OF)) == report.to_json()
    kinds = [item.kind for item in report.ranked]
    assert kinds == sorted(kinds, key=lambda kind: kind != "emergency"), "emergencies rank first"
    assert [item.rank for item in report.ranked] == list(range(1, len(report.ranked) + 1))
    keys = [(item.kind != "emergency", -item.score, item.id) for item in report.ranked]
    assert keys == sorted(keys)
    contraindicated = {item.id for item in report.contraindicated}
    assert not contraindicated & {item.id for item in report.ranked}
    requested = {request.field for request in report.data_requests}
    for item in report.ranked:
        assert item.rules
        assert item.citations
        assert set(item.conditional_on) <= requested, "every conditional field is asked for"
    for excluded in report.contraindicated:
        assert all(reason.citations and reason.rule for reason in excluded.reasons)
    for caution in report.cautions:
        assert caution.citations


def _tamper_containers(node: object, seen: set[int]) -> None:
    """Append to every list and add a key to every dict reachable from a report."""
    if id(node) in seen:
        return
    seen.add(id(node))
    if isinstance(node, BaseModel):
        for value in vars(node).values():
            _tamper_containers(value, seen)
    elif isinstance(node, list):
        for item in list(node):
            _tamper_containers(item, seen)
        node.append("TAMPERED")
    elif isinstance(node, dict):
        for item in list(node.values()):
            _tamper_containers(item, seen)
        node["TAMPERED"] = "TAMPERED"


def test_a_reports_lists_are_its_own(knowledge: Knowledge) -> None:
    """Validation keeps an `Any` patient value as it is: a list value (current agents, bone
    sites) a rule showed must still not be the ranking memo's, which later reports share."""
    profile = {
        "primary": {"site": "breast"},
        "bone": {"metastases_present": True, "sites": ["T4 vertebra", "pelvis"]},
        "meds": {"current_bma": ["denosumab", "zoledronic_acid"]},
        "dental": {"risk_factors": []},
        "labs": {"crcl_ml_min": 25},
    }
    before = evaluate(profile, knowledge, AS_OF).to_json()  # the memo now holds its parts
    report = evaluate(profile, knowledge, AS_OF, explain=True)
    assert any(isinstance(v.value, list) for item in report.ranked for v in item.patient_values)
    _tamper_containers(report, set())
    assert evaluate(profile, knowledge, AS_OF).to_json() == before
