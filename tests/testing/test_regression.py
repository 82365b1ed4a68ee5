"""Scenario regression tooling: readable failures, coverage, golden snapshots, JUnit, diff,
and why-not explanations."""

from __future__ import annotations

import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

from typer.testing import CliRunner

from bonecds import Knowledge, load_knowledge, why_not
from bonecds.cli.app import app
from bonecds.testing.regression import coverage, diff_knowledge, run_scenario, scenario_files
from bonecds.testing.scenarios import load_scenario
from tests.conftest import AS_OF, FIXTURES, RULES

SAMPLE = FIXTURES / "sample-breast-bone-mets.yaml"
runner = CliRunner()


def _broken_copy(tmp_path: Path) -> Path:
    text = SAMPLE.read_text(encoding="utf-8").replace(
        "expect:\n", "expect:\n  first: sbrt\n  contraindicated: [denosumab]\n"
    )
    text = text.replace("base: ", "base: ../patient_fixtures/")  # no base here; harmless
    path = tmp_path / "broken-expectation.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_broken_expectation_fails_with_a_readable_diff(
    tmp_path: Path, knowledge: Knowledge
) -> None:
    result = run_scenario(_broken_copy(tmp_path), knowledge)
    assert not result.passed
    text = result.describe()
    assert "first ranked\n    expected: sbrt\n    actual:   denosumab" in text
    assert "contraindicated: missing denosumab" in text


def test_cli_test_summary_and_exit_code(tmp_path: Path) -> None:
    shutil.copy(SAMPLE, tmp_path / "sample.yaml")
    _broken_copy(tmp_path)
    junit = tmp_path / "junit.xml"
    outcome = runner.invoke(
        app, ["test", str(tmp_path), "--rules", str(RULES), "--junit", str(junit)]
    )
    assert outcome.exit_code == 1
    assert outcome.stdout.splitlines()[-1] == "1 passed, 1 failed"
    assert "FAIL broken-expectation" in outcome.stdout
    suite = ET.fromstring(junit.read_text(encoding="utf-8"))
    assert (suite.get("tests"), suite.get("failures")) == ("2", "1")
    assert suite.find("testcase[@name='broken-expectation']/failure") is not None


def test_project_scenarios_pass_with_full_rule_coverage() -> None:
    outcome = runner.invoke(
        app, ["test", str(FIXTURES), "--rules", str(RULES), "--coverage", "--fail-under", "100"]
    )
    assert outcome.exit_code == 0, outcome.stdout[-2000:]
    assert outcome.stdout.splitlines()[-1].endswith(" passed, 0 failed")


def test_coverage_names_a_rule_that_never_fired(knowledge: Knowledge) -> None:
    found = coverage([run_scenario(SAMPLE, knowledge)], knowledge)
    gctb = next(rule for rule in found.rules if rule.rule == "gctb-surgery-first-when-resectable")
    assert (gctb.fired_in, gctb.covered) == (0, False)
    assert "-- gctb-surgery-first-when-resectable: fired 0, silent 1" in found.describe()
    outcome = runner.invoke(app, ["test", str(SAMPLE), "--rules", str(RULES), "--fail-under", "90"])
    assert outcome.exit_code == 1
    assert "is below 90.0%" in outcome.stderr


def test_golden_snapshot_update_then_detects_a_change(tmp_path: Path, knowledge: Knowledge) -> None:
    scenario = tmp_path / "sample.yaml"
    shutil.copy(SAMPLE, scenario)
    assert run_scenario(scenario, knowledge, update=True, create=True).passed
    golden = tmp_path / "golden" / "sample.json"
    assert run_scenario(scenario, knowledge, golden=True).passed
    golden.write_text(
        golden.read_text(encoding="utf-8").replace('"score": 70', '"score": 71', 1),
        encoding="utf-8",
    )
    result = run_scenario(scenario, knowledge, golden=True)
    assert not result.passed
    assert any(line.startswith("-") and '"score": 71' in line for line in result.golden_diff)


def test_why_not_explains_a_near_miss_with_values_and_thresholds(knowledge: Knowledge) -> None:
    scenario, profile = load_scenario(FIXTURES / "c4-ecog-2-contraindicated.yaml")
    answer = why_not(profile, knowledge, "sbrt", scenario.as_of)
    assert answer.outcome == "contraindicated"
    assert answer.reasons[0].rule == "sbrt-not-eligible"
    candidate = answer.candidates[0]
    assert candidate.status == "not met"
    failed = [
        line for line in candidate.conditions if line.status == "not met" and line.value is not None
    ]
    assert ("ecog <= 1", 2) in [(line.text, line.value) for line in failed]


def test_why_not_cli_and_unknown_option() -> None:
    path = str(FIXTURES / "c4-ecog-2-contraindicated.yaml")
    outcome = runner.invoke(app, ["evaluate", path, "--why-not", "sbrt", "--rules", str(RULES)])
    assert outcome.exit_code == 0
    assert "[not met] ecog <= 1 (patient: 2)" in outcome.stdout
    outcome = runner.invoke(app, ["evaluate", path, "--why-not", "sbrtt", "--rules", str(RULES)])
    assert outcome.exit_code == 2
    assert "did you mean 'sbrt'" in outcome.stderr


def test_diff_lists_the_scenarios_a_rule_change_moves(tmp_path: Path) -> None:
    changed = tmp_path / "rules"
    shutil.copytree(RULES, changed)
    path = changed / "d-bone-modifying-agents.yaml"
    text = path.read_text(encoding="utf-8")
    band = 'dose: {amount: 3.5, unit: mg, route: IV, text: "3.5 mg IV over at least 15 min"}'
    assert band in text
    path.write_text(text.replace(band, band.replace("3.5", "3.4")), encoding="utf-8")
    files = scenario_files(
        [FIXTURES / "d4-zoledronic-acid-crcl-60.yaml", FIXTURES / "d4-zoledronic-acid-crcl-61.yaml"]
    )
    changes = diff_knowledge(files, load_knowledge(RULES), load_knowledge(changed))
    assert [change.path.stem for change in changes] == ["d4-zoledronic-acid-crcl-60"]
    assert any("dose 3.5 mg" in line and line.startswith("-") for line in changes[0].lines)
    outcome = runner.invoke(
        app, ["diff", str(RULES), str(changed), *map(str, files), "--exit-code"]
    )
    assert outcome.exit_code == 1
    assert outcome.stdout.splitlines()[-1] == "1 of 2 scenarios change"


def test_as_of_is_fixed_by_the_scenario() -> None:
    scenario, _ = load_scenario(SAMPLE)
    assert scenario.as_of == AS_OF
