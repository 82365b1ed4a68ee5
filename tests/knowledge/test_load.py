"""The loader refuses every broken rule file with a stable code at the right file:line."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bonecds import RuleError, load_knowledge
from bonecds.engine import compile as compiler
from bonecds.knowledge.load import load_rules
from tests.conftest import DATA, ROOT, RULES

ALL_BAD = sorted((DATA / "bad_rules").glob("*.yaml"))
# Lint that `bonecds rules check` fails on but that does not stop loading (evaluation in
# English still works): checked through the command below.
LINT_CODES = {"stale-translation", "unused-translation"}
SUPPORT = (
    "settings.yaml",
    "sources.yaml",
    "vocabulary.yaml",
    "catalogue.yaml",
    "d-bone-modifying-agents.yaml",
)
# Found once the whole directory is known, so they name the directory, not a line.
DIRECTORY_CODES: set[str] = set()
# The engine's limit of patient fields per rule, lowered so that a small example reaches it.
SMALL_ENGINE_LIMIT = 20
README_RULES = (ROOT / "rules" / "README.md").read_text(encoding="utf-8")


def _rules_dir(tmp_path: Path, *files: Path) -> Path:
    for name in SUPPORT:
        shutil.copy(RULES / name, tmp_path / name)
    for file in files:
        shutil.copy(file, tmp_path / file.name)
    return tmp_path


def _expected(path: Path) -> tuple[str, int]:
    text = path.read_bytes().decode("utf-8", errors="replace")  # unreadable-file is not UTF-8
    match = re.match(r"# expect: (\S+) line (\d+)", text)
    assert match, f"{path.name} lacks its '# expect: CODE line N' header"
    return match.group(1), int(match.group(2))


BAD = [path for path in ALL_BAD if _expected(path)[0] not in LINT_CODES]
LINT_BAD = [path for path in ALL_BAD if _expected(path)[0] in LINT_CODES]


@pytest.mark.parametrize("path", BAD, ids=[p.stem for p in BAD])
def test_broken_rule_file_is_refused_with_code_and_line(
    path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(compiler, "MAX_PATIENT_KEYS", SMALL_ENGINE_LIMIT)
    code, line = _expected(path)
    with pytest.raises(RuleError) as caught:
        load_knowledge(_rules_dir(tmp_path, path))
    where = tmp_path.name if code in DIRECTORY_CODES else path.name
    found = [(d.code, d.line) for d in caught.value.diagnostics if d.file.endswith(where)]
    assert (code, line) in found, found


@pytest.mark.parametrize("path", LINT_BAD, ids=[p.stem for p in LINT_BAD])
def test_broken_rule_file_fails_rules_check_with_code_and_line(path: Path, tmp_path: Path) -> None:
    from bonecds.cli.app import app

    code, line = _expected(path)
    result = CliRunner().invoke(app, ["rules", "check", str(_rules_dir(tmp_path, path))])
    assert result.exit_code == 2
    assert f"{path.name}:{line}:1: error[{code}]" in result.stderr


def _documented_codes() -> set[str]:
    section = README_RULES.split("## Error codes", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"`([a-z-]+)`", section))


def test_every_error_code_has_a_broken_example() -> None:
    # missing-file, no-rules-dir and missing-translation concern the directory or every rule:
    # tested below and in test_i18n.py.
    whole_directory = {"missing-file", "no-rules-dir", "missing-translation"}
    assert {_expected(p)[0] for p in ALL_BAD} >= _documented_codes() - whole_directory


def test_all_problems_are_reported_in_one_run(tmp_path: Path) -> None:
    with pytest.raises(RuleError) as caught:
        load_knowledge(_rules_dir(tmp_path, *BAD))
    found = {(Path(d.file).name, d.code, d.line) for d in caught.value.diagnostics}
    # every file except those found at compile time, after loading succeeds
    compiled = {"negation-cycle", "engine-limit", *DIRECTORY_CODES}
    expected = {(p.name, *_expected(p)) for p in BAD if _expected(p)[0] not in compiled}
    assert expected - found == set()


def test_one_rule_reports_every_problem_it_has(tmp_path: Path) -> None:
    (tmp_path / "x.yaml").write_text(
        "rules:\n"
        "  - id: many-problems\n"
        "    version: 1\n"
        "    status: draft\n"
        "    title: T\n"
        "    kind: note\n"
        "    catalogue: D16\n"
        "    when: {field: labs.crcl_ml_mn, lt: 30}\n"
        "    effects:\n"
        "      - {caution: no-such-caution, text: x, applies_to: [zoledronic-acd]}\n"
        "    rationale: r\n"
        "    citations: [{source: R999}]\n",
        encoding="utf-8",
    )
    with pytest.raises(RuleError) as caught:
        load_rules(_rules_dir(tmp_path))
    found = {(d.code, d.line, d.column) for d in caught.value.diagnostics}
    assert found >= {
        ("unknown-catalogue", 7, 5),
        ("unknown-field", 8, 12),
        ("unknown-caution", 10, 10),
        ("unknown-option", 10, 58),
        ("unresolved-citation", 12, 18),
    }


def test_yaml_errors_are_in_plain_words(tmp_path: Path) -> None:
    messages = []
    for bad in ("    when: {field: ecog, lt: 1}\n  effects: []\n", "    title: a: b\n"):
        (tmp_path / "x.yaml").write_text(f"rules:\n  - id: a\n{bad}", encoding="utf-8")
        with pytest.raises(RuleError) as caught:
            load_rules(_rules_dir(tmp_path))
        messages += [str(d) for d in caught.value.diagnostics if d.code == "yaml-syntax"]
    assert len(messages) == 2
    assert "x.yaml:4:3: error[yaml-syntax] this line is not indented like" in messages[0]
    assert "quote text containing ': '" in messages[1]
    assert not [m for m in messages if "<block" in m or "expected" in m]


def test_deeply_nested_flow_mappings_are_one_line(tmp_path: Path) -> None:
    (tmp_path / "x.yaml").write_text("rules: " + "{a: " * 600 + "1" + "}" * 600, "utf-8")
    with pytest.raises(RuleError) as caught:
        load_rules(_rules_dir(tmp_path))
    (diagnostic,) = caught.value.diagnostics
    assert (diagnostic.code, diagnostic.line) == ("too-deep", 1)


def test_infinite_threshold_is_refused_at_its_line(tmp_path: Path) -> None:
    bad = DATA / "bad_rules" / "non-finite.yaml"
    text = bad.read_text(encoding="utf-8").replace("gte: .nan", "lt: -.inf")
    (tmp_path / "x.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(RuleError) as caught:
        load_rules(_rules_dir(tmp_path))
    assert [(d.code, d.line) for d in caught.value.diagnostics] == [("invalid-value", 8)]


def test_unknown_field_suggests_the_closest_name(tmp_path: Path) -> None:
    bad = DATA / "bad_rules" / "unknown-field.yaml"
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
