"""The test suite itself: it leaves the user's files alone."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bonecds import load_knowledge
from tests.conftest import RULES, SESSION_CACHE


def test_the_suite_caches_knowledge_in_its_own_directory_never_the_users(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    monkeypatch.setenv("HOME", str(home))  # where ~/.cache/bonecds would be
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    shutil.copytree(RULES, tmp_path / "rules")  # a directory never cached before: a new entry
    before = set(SESSION_CACHE.glob("knowledge-*.pickle"))
    load_knowledge(tmp_path / "rules")
    assert not home.exists(), "the suite wrote into the user's home"
    assert len(set(SESSION_CACHE.glob("knowledge-*.pickle")) - before) == 1
