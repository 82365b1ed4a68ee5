"""The rule author's loop: `rules check FILE`, `rules show`, `rules list --format json`,
`rules sync`, and `bonecds test --update` that never writes snapshots in bulk."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from typer.testing import CliRunner

from bonecds.cli.app import app
from tests.conftest import DATA, FIXTURES, ROOT, RULES

runner = CliRunner()
BAD = DATA / "bad_rules"


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def _rules_copy(tmp_path: Path) -> Path:
    copy = tmp_path / "rules"
    shutil.copytree(RULES, copy)
    return copy


def test_rules_check_of_one_file_checks_it_against_its_directory(tmp_path: Path) -> None:
    code, out, err = run("rules", "check", str(RULES / "d-bone-modifying-agents.yaml"))
    assert (code, err) == (0, "")
    assert out.startswith("ok: ")
    rules = _rules_copy(tmp_path)
    shutil.copy(BAD / "unknown-caution.yaml", rules / "x.yaml")
    shutil.copy(BAD / "unknown-context.yaml", rules / "y.yaml")
    code, out, err = run("rules", "check", str(rules / "x.yaml"))
    assert (code, out) == (2, "")
    assert err.splitlines() == [
        f"{rules / 'x.yaml'}:9:16: error[unknown-caution] 'renal-dose' is not a known caution "
        "id; did you mean 'renal-dose-adjustment'?",
        f"1 more in other files of {rules}",
        "1 problem(s) found",
    ]


def test_rules_check_of_a_missing_path_says_so(tmp_path: Path) -> None:
    code, out, err = run("rules", "check", str(tmp_path / "x.yaml"))
    assert (code, out) == (2, "")
    assert err == f"error: {tmp_path / 'x.yaml'}: no such rules directory or rule file\n"


def test_rules_show_is_plain_words_and_suggests_on_a_typo() -> None:
    code, out, _ = run("rules", "show", "zoledronic-acid-renal-dosing", "--rules", str(RULES))
    assert code == 0
    assert "adjust zoledronic-acid: dose 3.5 mg" in out
    assert not [mark for mark in ("{'", "**", "`", "<a ") if mark in out]
    code, out, err = run("rules", "show", "zoledronic-acid-renal-dosng", "--rules", str(RULES))
    assert (code, out) == (2, "")
    assert err.strip().endswith("did you mean 'zoledronic-acid-renal-dosing'?")


def test_rules_list_as_json() -> None:
    code, out, _ = run("rules", "list", "--format", "json", "--rules", str(RULES))
    assert code == 0
    rules = json.loads(out)
    d4 = next(rule for rule in rules if rule["id"] == "zoledronic-acid-renal-dosing")
    assert (d4["catalogue"], d4["kind"], d4["file"]) == (
        "D4",
        "caution",
        "d-bone-modifying-agents.yaml",
    )
    assert "crcl-above-60" in d4["branches"]


def _repository(tmp_path: Path) -> Path:
    """A copy of what `rules sync` reads: rules, docs, README, two scenarios and a golden."""
    root = tmp_path / "repo"
    _rules_copy(root)
    shutil.copytree(ROOT / "docs", root / "docs")
    shutil.copy(ROOT / "README.md", root / "README.md")
    (root / "patient_fixtures" / "golden").mkdir(parents=True)
    shutil.copytree(FIXTURES / "bases", root / "patient_fixtures" / "bases")
    for name in ("d1-breast-fires", "d4-zoledronic-acid-12-weekly-crcl-45"):
        shutil.copy(FIXTURES / f"{name}.yaml", root / "patient_fixtures" / f"{name}.yaml")
    shutil.copy(
        FIXTURES / "golden" / "d1-breast-fires.json",
        root / "patient_fixtures" / "golden" / "d1-breast-fires.json",
    )
    return root


def test_rules_sync_rewrites_generated_files_and_lists_what_to_review(tmp_path: Path) -> None:
    root = _repository(tmp_path)
    code, out, _ = run("rules", "sync", "--check", "--root", str(root))
    assert (code, out.splitlines()[-1]) == (0, "nothing to review")
    rules = root / "rules" / "d-bone-modifying-agents.yaml"
    text = rules.read_text(encoding="utf-8")
    rules.write_text(
        text.replace("Zoledronic acid dose by creatinine", "Zoledronic acid dose by CrCl"), "utf-8"
    )
    code, out, _ = run("rules", "sync", "--check", "--root", str(root))
    assert code == 1
    assert "out of date: docs/knowledge-catalogue.md (run: bonecds rules sync)" in out
    code, out, _ = run("rules", "sync", "--root", str(root))
    assert (code, "rewrote: docs/knowledge-catalogue.md (review the diff)" in out) == (0, True)
    assert "dose by CrCl" in (root / "docs" / "knowledge-catalogue.md").read_text("utf-8")
    rules.write_text(text.replace("score: 70", "score: 71"), "utf-8")
    code, out, _ = run("rules", "sync", "--root", str(root))
    assert code == 1
    assert "golden changes: patient_fixtures/d1-breast-fires.yaml" in out


def test_update_without_paths_rewrites_only_existing_snapshots(tmp_path: Path) -> None:
    root = _repository(tmp_path)
    fixtures = root / "patient_fixtures"
    golden = fixtures / "golden"
    before = golden.joinpath("d1-breast-fires.json").read_text("utf-8")
    golden.joinpath("d1-breast-fires.json").write_text(before.replace("70", "71", 1), "utf-8")
    code, out, _ = run("test", str(fixtures), "--update", "--rules", str(root / "rules"))
    assert code == 0
    assert sorted(p.name for p in golden.iterdir()) == ["d1-breast-fires.json"]
    assert golden.joinpath("d1-breast-fires.json").read_text("utf-8") == before
    assert f"wrote {golden / 'd1-breast-fires.json'}" in out
    scenario = fixtures / "d4-zoledronic-acid-12-weekly-crcl-45.yaml"
    code, out, _ = run("test", str(scenario), "--update", "--rules", str(root / "rules"))
    assert (code, len(list(golden.iterdir()))) == (0, 2)
