"""The compiled-knowledge cache: same reports as a fresh load, never stale, never in the way."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest

from bonecds.api import _build, evaluate, load_knowledge
from bonecds.errors import RuleError
from bonecds.knowledge import cache
from bonecds.testing.scenarios import read_patient
from tests.conftest import ROOT

SAMPLE = ROOT / "patient_fixtures" / "sample-breast-bone-mets.yaml"
AS_OF = dt.date(2026, 11, 23)


@pytest.fixture
def rules(tmp_path: Path) -> Path:
    copy = tmp_path / "rules"
    shutil.copytree(ROOT / "rules", copy)
    return copy


@pytest.fixture
def builds(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[Path]:
    """A private cache directory, and a log of every real (uncached) build."""
    monkeypatch.setenv("BONECDS_CACHE_DIR", str(tmp_path / "cache"))
    done: list[Path] = []

    def counted(directory: Path) -> object:
        done.append(directory)
        return _build(directory)

    monkeypatch.setattr("bonecds.api._build", counted)
    return done


def test_second_load_comes_from_the_cache_and_reports_the_same_bytes(
    rules: Path, builds: list[Path]
) -> None:
    first = load_knowledge(rules)
    second = load_knowledge(rules)
    assert builds == [rules]
    profile, _ = read_patient(SAMPLE)
    fresh = _build(rules)
    reports = {evaluate(profile, k, AS_OF).to_json() for k in (first, second, fresh)}
    assert len(reports) == 1
    assert second.ruleset_name == fresh.ruleset_name


def test_an_edited_rule_file_is_loaded_again(rules: Path, builds: list[Path]) -> None:
    load_knowledge(rules)
    settings = rules / "settings.yaml"
    settings.write_text(settings.read_text() + "\n# edited\n")
    load_knowledge(rules)
    assert builds == [rules, rules]


def test_a_broken_rule_file_is_reported_not_served_from_the_cache(
    rules: Path, builds: list[Path]
) -> None:
    load_knowledge(rules)
    (rules / "zz-broken.yaml").write_text("rules:\n  - id: [unclosed\n")
    with pytest.raises(RuleError, match=r"zz-broken\.yaml"):
        load_knowledge(rules)


def test_a_corrupt_entry_is_rebuilt(rules: Path, builds: list[Path], tmp_path: Path) -> None:
    load_knowledge(rules)
    (entry,) = (tmp_path / "cache").glob("knowledge-*.pickle")
    entry.write_bytes(b"not a pickle")
    assert load_knowledge(rules).base.rules
    assert len(builds) == 2


def test_off_writes_nothing(
    rules: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, builds: list[Path]
) -> None:
    monkeypatch.setenv("BONECDS_CACHE_DIR", "off")
    load_knowledge(rules)
    load_knowledge(rules)
    assert len(builds) == 2
    assert not (tmp_path / "cache").exists()


def test_an_unwritable_cache_directory_is_skipped(
    rules: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    blocked = tmp_path / "file-not-dir"
    blocked.write_text("")
    monkeypatch.setenv("BONECDS_CACHE_DIR", str(blocked / "cache"))
    assert load_knowledge(rules).base.rules


def test_old_entries_are_pruned(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    where = tmp_path / "cache"
    monkeypatch.setenv("BONECDS_CACHE_DIR", str(where))
    for index in range(cache.KEEP_ENTRIES + 3):
        directory = tmp_path / f"d{index}"
        directory.mkdir()
        (directory / "file").write_text(str(index))
        assert cache.cached(directory, lambda d: d.name) == directory.name
    assert len(list(where.glob("knowledge-*.pickle"))) == cache.KEEP_ENTRIES


def test_an_entry_others_can_write_is_not_trusted(
    rules: Path, builds: list[Path], tmp_path: Path
) -> None:
    load_knowledge(rules)
    (entry,) = (tmp_path / "cache").glob("knowledge-*.pickle")
    entry.chmod(0o666)
    load_knowledge(rules)
    assert len(builds) == 2


def test_an_unreadable_rule_file_is_left_to_the_loader(
    rules: Path, builds: list[Path], tmp_path: Path
) -> None:
    (rules / "zz-dangling.yaml").symlink_to(tmp_path / "missing.yaml")
    with pytest.raises(RuleError, match=r"zz-dangling\.yaml"):
        load_knowledge(rules)
    assert not list((tmp_path / "cache").glob("knowledge-*.pickle"))
