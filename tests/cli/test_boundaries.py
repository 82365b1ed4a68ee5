"""Issue 11 at the command line: bad input is exit 2 and one line, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bonecds.cli.app import app
from tests.conftest import FIXTURES, RULES

SAMPLE = FIXTURES / "sample-breast-bone-mets.yaml"
runner = CliRunner()


def run(*args: str, stdin: str | None = None) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args), input=stdin, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def assert_refused(code: int, out: str, err: str) -> None:
    assert code == 2, err
    assert out == ""
    assert err.count("\n") == 1, err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    "text",
    [
        "[" * 1500 + "]" * 1500,
        '{"a":' * 1500 + "1" + "}" * 1500,
        "ecog: 1\x00\n",
        "ecog: !custom 1\n",
        "ecog: !!timestamp 1\n",
        "bone: &a {}\nspine: *a\n",
        '{"neuro": {"cord_compression": true}, "neuro": {}}',
        '{"labs": {"calcium_total": {"value": 1e999, "unit": "mg/dL"}}}',
        '{"patient_id": "\\ud800"}',
        '{"a[b": 1, "literal": 2}',
        '{"bad\\nname\\u001b[2J": 1}',
        '{"labs": {"scr": {"value": 106, "unit": "mg/dL"}}}',
    ],
)
def test_malformed_profiles_are_exit_2_with_one_line(tmp_path: Path, text: str) -> None:
    path = tmp_path / "p.json"
    path.write_text(text, encoding="utf-8")
    assert_refused(*run("evaluate", str(path), "--rules", str(RULES)))


def test_utf16_profile_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("ecog: 1\n", encoding="utf-16")
    assert_refused(*run("evaluate", str(path), "--rules", str(RULES)))
    result = runner.invoke(app, ["evaluate", "-", "--rules", str(RULES)], input=path.read_bytes())
    assert_refused(result.exit_code, result.stdout, result.stderr)


def test_unbounded_input_is_refused_quickly() -> None:
    assert_refused(*run("evaluate", "/dev/zero", "--rules", str(RULES)))


@pytest.mark.parametrize(
    "args",
    [
        ("test", "/nonexistent/scenario.yaml"),
        ("diff", str(RULES), str(RULES), "/nonexistent/scenario.yaml"),
    ],
)
def test_missing_scenario_paths_are_exit_2(args: tuple[str, ...]) -> None:
    assert_refused(*run(*args))


def test_default_scenarios_outside_the_repository_are_exit_2(tmp_path: Path) -> None:
    cwd = Path.cwd()
    os.chdir(tmp_path)
    try:
        assert_refused(*run("test", "--rules", str(RULES)))
    finally:
        os.chdir(cwd)


def _bonecds(args: list[str], **kwargs: object) -> subprocess.CompletedProcess[bytes]:
    command = [sys.executable, "-m", "bonecds", *args]
    return subprocess.run(command, capture_output=False, check=False, timeout=120, **kwargs)  # type: ignore[call-overload, no-any-return]


def test_evaluate_stdin_closed_is_exit_2() -> None:
    result = _bonecds(
        ["evaluate", "-", "--rules", str(RULES)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        preexec_fn=lambda: os.close(0),
    )
    assert result.returncode == 2, result.stderr
    assert result.stdout == b""
    assert b"standard input is closed" in result.stderr


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_output_to_a_full_disk_is_one_line() -> None:
    with open("/dev/full", "wb") as full:
        result = _bonecds(
            ["evaluate", str(SAMPLE), "--rules", str(RULES)], stdout=full, stderr=subprocess.PIPE
        )
    assert result.returncode == 1
    assert result.stderr.decode().splitlines() == [
        "error: cannot write the output (No space left on device)"
    ]


def test_a_repeated_key_inside_a_fhir_bundle_is_refused_naming_its_path(tmp_path: Path) -> None:
    # A Bundle is no profile, but a repeated key must not silently keep the last value either.
    bundle = (FIXTURES / "fhir" / "sample-breast-bone-mets.json").read_text(encoding="utf-8")
    assert bundle.count('"status": "final"') >= 1
    repeated = bundle.replace('"status": "final"', '"status": "final", "status": "cancelled"', 1)
    path = tmp_path / "bundle.json"
    path.write_text(repeated, encoding="utf-8")
    code, out, err = run("evaluate", str(path), "--rules", str(RULES))
    assert (code, out) == (2, "")
    assert "entry." in err
    assert ".status: duplicate key 'status'" in err
