"""Clinical safety of the emergencies (A), beyond what scenario expectations can say.

Scenario files check which options, cautions and requests appear; these check what the emergency
tells the clinician to do and where a caution is attached.
"""

from __future__ import annotations

from pathlib import Path

from bonecds import Knowledge
from bonecds.api import evaluate
from bonecds.engine.facts import to_facts
from bonecds.knowledge.model import ReferenceDefaults
from bonecds.profile.model import parse_profile
from bonecds.report.model import RankedItem, Report
from bonecds.testing.scenarios import load_scenario
from tests.conftest import FIXTURES


def _report(knowledge: Knowledge, name: str) -> Report:
    scenario, profile = load_scenario(Path(FIXTURES / name))
    return evaluate(profile, knowledge, scenario.as_of)


def _item(report: Report, option: str) -> RankedItem:
    return next(item for item in report.ranked if item.id == option)


def test_no_routine_steroids_without_neurological_signs(knowledge: Knowledge) -> None:
    # NG234 1.8.7: ESCC 2 without a deficit gets the pathway but no dexamethasone dose.
    emergency = _item(_report(knowledge, "a1-escc-2-fires.yaml"), "mscc-emergency")
    assert emergency.dose is None
    assert "do not start corticosteroids routinely" in emergency.rationale


def test_dexamethasone_16_mg_with_neurological_signs(knowledge: Knowledge) -> None:
    report = _report(knowledge, "a1-spine-unknown-new-deficit-fires.yaml")
    emergency = _item(report, "mscc-emergency")
    assert emergency.dose is not None
    assert emergency.dose.amount == 16
    assert "as soon as possible" in emergency.rationale


def test_pregnancy_caution_is_attached_to_hypercalcaemia_treatment(knowledge: Knowledge) -> None:
    for grade in ("a4-pregnant-severe", "a5-pregnant-moderate"):
        name = f"{grade}-pregnancy-caution.yaml"
        treatment = _item(_report(knowledge, name), "hypercalcaemia-treatment")
        assert "pregnancy" in treatment.cautions


def test_ionised_reference_is_derived_only_with_an_ionised_value() -> None:
    defaults = ReferenceDefaults(8.9, 10.5, 4.69, 5.21)
    without = to_facts(parse_profile({}), defaults).values
    assert "derived.calcium_ionised_lln_mg_dl" not in without
    lab = {"calcium_ionised": "1.0 mmol/L", "calcium_ionised_lln": "1.1 mmol/L"}
    values = to_facts(parse_profile({"labs": lab}), defaults).values
    assert values["derived.calcium_ionised_lln_mg_dl"] == 4.41  # the laboratory's, converted
    assert values["derived.calcium_ionised_uln_mg_dl"] == 5.21  # the default
    assert values["derived.calcium_ionised_reference_default"] is True
