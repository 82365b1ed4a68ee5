"""The loader refuses every broken rule file with a stable code at the right file:line."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from bonecds import RuleError, load_knowledge
from bonecds.loader import load_rules
from tests.conftest import RULES

BAD = sorted((Path(__file__).parent / "bad_rules").glob("*.yaml"))
SUPPORT = ("settings.yaml", "sources.yaml", "vocabulary.yaml", "d-bone-modifying-agents.yaml")


def _rules_dir(tmp_path: Path, *files: Path) -> Path:
    for name in SUPPORT:
        shutil.copy(RULES / name, tmp_path / name)
    for file in files:
        shutil.copy(file, tmp_path / file.name)
    return tmp_path


def _expected(path: Path) -> tuple[str, int]:
    match = re.match(r"# expect: (\S+) line (\d+)", path.read_text(encoding="utf-8"))
    assert match, f"{path.name} lacks its '# expect: CODE line N' header"
    return match.group(1), int(match.group(2))


@pytest.mark.parametrize("path", BAD, ids=[p.stem for p in BAD])
def test_broken_rule_file_is_refused_with_code_and_line(path: Path, tmp_path: Path) -> None:
    code, line = _expected(path)
    with pytest.raises(RuleError) as caught:
        load_knowledge(_rules_dir(tmp_path, path))
    found = [(d.code, d.line) for d in caught.value.diagnostics if d.file.endswith(path.name)]
    assert (code, line) in found, found


def test_every_error_code_has_a_broken_example() -> None:
    assert {_expected(p)[0] for p in BAD} >= {
        "yaml-syntax",
        "duplicate-key",
        "unknown-key",
        "unknown-field",
        "unknown-option",
        "duplicate-rule-id",
        "unresolved-citation",
        "field-type",
        "negation-cycle",
    }


def test_all_problems_are_reported_in_one_run(tmp_path: Path) -> None:
    with pytest.raises(RuleError) as caught:
        load_knowledge(_rules_dir(tmp_path, *BAD))
    files = {Path(d.file).name for d in caught.value.diagnostics}
    # every file except the negation cycle (found at compile time, after loading succeeds)
    assert files >= {p.name for p in BAD if p.stem != "negation-cycle"}


def test_unknown_field_suggests_the_closest_name(tmp_path: Path) -> None:
    bad = Path(__file__).parent / "bad_rules" / "unknown-field.yaml"
    with pytest.raises(RuleError) as caught:
        load_rules(_rules_dir(tmp_path, bad))
    (diagnostic,) = [d for d in caught.value.diagnostics if d.code == "unknown-field"]
    assert "did you mean 'labs.crcl_ml_min'" in diagnostic.hint
    assert str(diagnostic).startswith(f"{diagnostic.file}:8:")


def test_missing_support_file_is_named(tmp_path: Path) -> None:
    _rules_dir(tmp_path)
    (tmp_path / "sources.yaml").unlink()
    with pytest.raises(RuleError) as caught:
        load_rules(tmp_path)
    assert ("missing-file", "sources.yaml") in {
        (d.code, Path(d.file).name) for d in caught.value.diagnostics
    }


def test_missing_directory_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(RuleError) as caught:
        load_rules(tmp_path / "nowhere")
    assert caught.value.diagnostics[0].code == "no-rules-dir"


def test_project_rules_load_cleanly() -> None:
    knowledge = load_rules(RULES)
    assert len(knowledge.rules) >= 6
    assert all(rule.citations for rule in knowledge.rules)
