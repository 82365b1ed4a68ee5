"""Shared fixtures: the project's knowledge base, loaded and compiled once per test session."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest

from bonecds import Knowledge, load_knowledge

ROOT = Path(__file__).resolve().parents[1]
RULES = Path(os.environ.get("BONECDS_TEST_RULES", ROOT / "rules"))
FIXTURES = ROOT / "patient_fixtures"
AS_OF = dt.date(2026, 11, 23)


@pytest.fixture(scope="session")
def knowledge() -> Knowledge:
    return load_knowledge(RULES)
