"""Every clinical scenario in patient_fixtures/ gives the outcome it expects."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bonecds import Report
from bonecds.cli.app import app
from bonecds.testing.scenarios import check_expectations, load_scenario
from tests.conftest import CONTRACT_KEYS, FIXTURES, RULES, ScenarioReport

SCENARIOS = sorted(p for p in FIXTURES.glob("*.yaml"))


def test_there_are_scenarios() -> None:
    assert len(SCENARIOS) >= 4


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_scenario(path: Path, scenario_report: ScenarioReport) -> None:
    scenario, _ = load_scenario(path)
    report = scenario_report(path, "en")
    problems = check_expectations(report, scenario.expect)
    assert not problems, f"{path.name}:\n" + "\n".join(f"  {problem}" for problem in problems)


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_cli_json_of_each_fixture_follows_the_contract(path: Path) -> None:
    result = CliRunner().invoke(app, ["evaluate", str(path), "-f", "json", "--rules", str(RULES)])
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert set(data) >= CONTRACT_KEYS
    assert Report.model_validate(data).to_json() == result.stdout
