"""Shared fixtures: the project's knowledge base, loaded and compiled once per test session."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from bonecds import Knowledge, load_knowledge

ROOT = Path(__file__).resolve().parents[1]
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
