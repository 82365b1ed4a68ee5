"""Calcium/vitamin D co-prescription (D9) on ionised calcium: advise or withhold, not just fire.

Scenario files can say that the `calcium-vitamin-d` caution appears; these check which advice it
gives and where it is attached, since both branches share the caution id.
"""

from __future__ import annotations

from pathlib import Path

from bonecds import Knowledge
from bonecds.api import evaluate
from bonecds.report.model import CautionOut
from bonecds.testing.scenarios import load_scenario
from tests.conftest import FIXTURES


def _calcium_vitamin_d(knowledge: Knowledge, name: str) -> list[CautionOut]:
    scenario, profile = load_scenario(Path(FIXTURES / name))
    report = evaluate(profile, knowledge, scenario.as_of)
    return [caution for caution in report.cautions if caution.id == "calcium-vitamin-d"]


def test_normal_ionised_calcium_advises_supplements_with_each_agent(knowledge: Knowledge) -> None:
    [caution] = _calcium_vitamin_d(knowledge, "d9-ionised-only-1-22-mmol-default-range-fires.yaml")
    assert "Calcium at least 500 mg" in caution.text
    assert {"denosumab", "zoledronic-acid"} <= set(caution.applies_to)


def test_high_ionised_calcium_tells_the_patient_to_withhold(knowledge: Knowledge) -> None:
    [caution] = _calcium_vitamin_d(knowledge, "d9-ionised-only-1-35-mmol-withhold-near-miss.yaml")
    assert caution.text.startswith("Ionised calcium is above the upper limit of normal: withhold")
    assert caution.applies_to == ["patient"]
