"""Shared fixtures: the project's knowledge base, loaded and compiled once per test session."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest

from bonecds import Knowledge, Report, evaluate, load_knowledge
from bonecds.testing.scenarios import load_scenario

ROOT = Path(__file__).resolve().parents[1]
# The top-level keys every report has (docs/contract.md).
CONTRACT_KEYS = {
    "disclaimer",
    "as_of",
    "knowledge_version",
    "engine_version",
    "patient_id",
    "ranked",
    "contraindicated",
    "cautions",
    "data_requests",
    "context",
    "notes",
}
DATA = ROOT / "tests" / "data"  # example files: FHIR, broken and linted rule files
RULES = Path(os.environ.get("BONECDS_TEST_RULES", ROOT / "rules"))
FIXTURES = ROOT / "patient_fixtures"
AS_OF = dt.date(2026, 11, 23)


# The compiled-knowledge cache of this test session: a fresh directory, never the user's
# ~/.cache/bonecds. Set at import, before any test loads knowledge; subprocesses inherit it.
SESSION_CACHE = Path(tempfile.mkdtemp(prefix="bonecds-test-cache-"))
os.environ["BONECDS_CACHE_DIR"] = str(SESSION_CACHE)


def pytest_unconfigure(config: pytest.Config) -> None:
    shutil.rmtree(SESSION_CACHE, ignore_errors=True)


@pytest.fixture(scope="session")
def knowledge() -> Knowledge:
    return load_knowledge(RULES)


ScenarioReport = Callable[[Path, str], Report]


@pytest.fixture(scope="session")
def scenario_report(knowledge: Knowledge) -> ScenarioReport:
    """`evaluate()` of a scenario in a language, made once per session: several tests read every
    scenario's report (expectations, Chinese texts, the batch data path), and evaluating each
    again per test only cost CI time. Reports are frozen models, safe to share."""
    made: dict[tuple[Path, str], Report] = {}

    def report(path: Path, language: str = "en") -> Report:
        key = (path, language)
        if key not in made:
            scenario, profile = load_scenario(path)
            made[key] = evaluate(profile, knowledge, scenario.as_of, language=language)
        return made[key]

    return report
