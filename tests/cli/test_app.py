"""The command line: exit codes, stdout/stderr separation, no traceback, no partial output."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bonecds.cli.app import app
from tests.conftest import CONTRACT_KEYS, DATA, FIXTURES, RULES

SAMPLE = FIXTURES / "sample-breast-bone-mets.yaml"
runner = CliRunner()


def run(*args: str, stdin: str | None = None) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args), input=stdin, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_evaluate_text_starts_with_the_disclaimer() -> None:
    code, out, err = run("evaluate", str(SAMPLE), "--rules", str(RULES))
    assert code == 0, err
    assert "not a medical device" in out.splitlines()[2]
    assert "Emergencies and management options, ranked" in out
    assert err == ""


@pytest.mark.parametrize("fmt", ["json", "yaml", "markdown", "text"])
def test_evaluate_is_byte_for_byte_deterministic(fmt: str) -> None:
    outputs = {run("evaluate", str(SAMPLE), "-f", fmt, "--rules", str(RULES))[1] for _ in range(3)}
    assert len(outputs) == 1


def test_evaluate_json_follows_the_contract() -> None:
    code, out, _ = run("evaluate", str(SAMPLE), "-f", "json", "--rules", str(RULES))
    report = json.loads(out)
    assert code == 0
    assert set(report) >= CONTRACT_KEYS
    assert report["as_of"] == "2026-11-23"  # the scenario fixes its date
    assert "explanations" not in report


def test_as_of_option_overrides_and_is_validated() -> None:
    code, out, _ = run(
        "evaluate", str(SAMPLE), "-f", "json", "--as-of", "2027-01-02", "--rules", str(RULES)
    )
    assert code == 0
    assert json.loads(out)["as_of"] == "2027-01-02"
    code, out, err = run("evaluate", str(SAMPLE), "--as-of", "02/01/2027")
    assert (code, out) == (2, "")
    assert "--as-of" in err


def test_explain_shows_conditions_with_values() -> None:
    code, out, _ = run("evaluate", str(SAMPLE), "--explain", "--rules", str(RULES))
    assert code == 0
    assert "[met] derived.crcl_ml_min >= 40 mL/min (patient: 45.96)" in out
    code, out, _ = run("evaluate", str(SAMPLE), "--explain", "-f", "json", "--rules", str(RULES))
    assert json.loads(out)["explanations"]


def test_stdin_is_accepted() -> None:
    code, out, _ = run(
        "evaluate",
        "-",
        "-f",
        "json",
        "--as-of",
        "2026-11-23",
        "--rules",
        str(RULES),
        stdin='{"ecog": 1}',
    )
    assert code == 0
    assert json.loads(out)["ranked"] == []


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("ecog: 7\n", "ecog: outside the plausible range 0-4"),
        ("spine: {sins: 19}\n", "spine.sins"),
        ("bone: {lesion_count: -1}\n", "bone.lesion_count"),
        ("labs: {calcium_total: {value: 2.4, unit: mg/L}}\n", "unit 'mg/L' is not accepted"),
        ("ecgo: 1\n", "ecgo: unknown field"),
        ("ecog: [1\n", ":2:1:"),
        ('{"ecog": }', "malformed JSON"),
        ("- just\n- a list\n", "must be a mapping"),
    ],
)
def test_bad_input_is_one_line_exit_2_no_stdout(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(content, encoding="utf-8")
    code, out, err = run("evaluate", str(path), "-f", "json")
    assert code == 2
    assert out == ""
    assert message in err
    assert len(err.strip().splitlines()) == 1
    assert "Traceback" not in err


def test_missing_file_is_an_input_error(tmp_path: Path) -> None:
    code, out, err = run("evaluate", str(tmp_path / "absent.yaml"))
    assert (code, out) == (2, "")
    assert "cannot read file" in err


def test_broken_rules_directory_fails_evaluate_cleanly(tmp_path: Path) -> None:
    code, out, err = run("evaluate", str(SAMPLE), "--rules", str(tmp_path))
    assert (code, out) == (2, "")
    assert "settings.yaml" in err


def test_rules_check_ok_and_broken(tmp_path: Path) -> None:
    code, out, _ = run("rules", "check", str(RULES))
    assert code == 0
    assert out.startswith("ok: ")
    for name in ("settings.yaml", "sources.yaml", "vocabulary.yaml"):
        (tmp_path / name).write_text((RULES / name).read_text(encoding="utf-8"), encoding="utf-8")
    bad = DATA / "bad_rules"
    for name in ("unknown-field.yaml", "duplicate-key.yaml"):
        (tmp_path / name).write_text((bad / name).read_text(encoding="utf-8"), encoding="utf-8")
    code, out, err = run("rules", "check", str(tmp_path))
    assert (code, out) == (2, "")
    assert "unknown-field.yaml:8:12: error[unknown-field]" in err
    assert "duplicate-key.yaml:9:5: error[duplicate-key]" in err
    assert err.strip().endswith("2 problem(s) found")


def test_rules_list_and_show() -> None:
    code, out, _ = run("rules", "list", "--rules", str(RULES))
    assert code == 0
    assert "zoledronic-acid-renal-dosing\tD4\tcaution" in out
    code, out, _ = run("rules", "show", "zoledronic-acid-renal-dosing", "--rules", str(RULES))
    assert code == 0
    assert "derived.crcl_ml_min > 60 mL/min" in out
    assert "R6:" in out
    code, out, err = run("rules", "show", "no-such-rule", "--rules", str(RULES))
    assert (code, out) == (2, "")
    assert "no rule 'no-such-rule'" in err


@pytest.mark.parametrize("name", ["patient", "rules"])
def test_schema_is_json(name: str) -> None:
    code, out, _ = run("schema", name)
    assert code == 0
    assert json.loads(out)["type"] == "object"


def test_fhir_bundle_input_takes_ages_at_as_of() -> None:
    bundle = str(FIXTURES / "fhir" / "sample-breast-bone-mets.json")
    outputs = []
    for as_of in ("2026-11-23", "2036-11-23"):
        code, out, err = run(
            "evaluate", bundle, "-f", "json", "--as-of", as_of, "--rules", str(RULES)
        )
        assert code == 0, err
        outputs.append(json.loads(out))
    ages = [
        next(d for d in report["derived"] if d["field"] == "derived.crcl_ml_min")["inputs"][
            "age_years"
        ]
        for report in outputs
    ]
    assert ages == [58, 68]


def test_the_cli_runs_without_pydantic_plugins_unless_the_user_chose() -> None:
    # Plugins see every validated profile (patient data); a user's explicit setting wins.
    script = "import os, bonecds.cli.app; print(os.environ['PYDANTIC_DISABLE_PLUGINS'])"
    clean = {k: v for k, v in os.environ.items() if k != "PYDANTIC_DISABLE_PLUGINS"}
    for env, expected in ((clean, "__all__"), ({**clean, "PYDANTIC_DISABLE_PLUGINS": "x"}, "x")):
        shown = subprocess.run(
            [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
        )
        assert shown.stdout.strip() == expected
