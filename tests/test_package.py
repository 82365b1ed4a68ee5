"""The package as a user gets it: the wheel carries the knowledge base and runs outside the
checkout; a plain install has no web stack or Dask, and a command needing one names its extra."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bonecds import evaluate, load_knowledge
from bonecds.cli.app import app
from bonecds.errors import InputError
from bonecds.testing.scenarios import load_scenario
from tests.conftest import FIXTURES, ROOT, RULES

SAMPLE = FIXTURES / "sample-breast-bone-mets.yaml"
# What a wheel is built from (pyproject.toml, setup.py, MANIFEST.in): copied, so that no stale
# build/ in the checkout can leak into the wheel.
BUILD_INPUTS = ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md", "LICENSE", "src", "rules")


def _pip(*args: str) -> None:
    # The project's own pip, so the clean venv needs none: the packages come from the same
    # index and local cache that installed this venv (no other network).
    command = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q", *args]
    subprocess.run(command, check=True, capture_output=True, text=True)


def _build_wheel(workdir: Path) -> Path:
    source = workdir / "source"
    skip = shutil.ignore_patterns("__pycache__", "*.egg-info")
    for name in BUILD_INPUTS:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name, ignore=skip)
        else:
            shutil.copy2(ROOT / name, source / name)
    _pip(
        "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", str(workdir), str(source)
    )
    (wheel,) = workdir.glob("bonecds-*.whl")
    return wheel


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A clean venv holding only the built wheel and its plain dependencies (no extras)."""
    workdir = tmp_path_factory.mktemp("wheel")
    (workdir / "source").mkdir()
    wheel = _build_wheel(workdir)
    venv = workdir / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    _pip("--python", str(venv / "bin" / "python"), "install", str(wheel))
    return venv


def _bonecds(venv: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BONECDS_RULES", "PYTHON"))}
    env["BONECDS_CACHE_DIR"] = "off"
    return subprocess.run(
        [str(venv / "bin" / "python"), "-m", "bonecds", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
    )


@pytest.mark.package
def test_the_wheel_evaluates_the_sample_from_an_empty_folder(
    installed: Path, tmp_path: Path
) -> None:
    scenario, profile = load_scenario(SAMPLE)
    as_of = scenario.as_of.isoformat()
    done = _bonecds(
        installed, "evaluate", str(SAMPLE), "--as-of", as_of, "-f", "json", cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    expected = evaluate(profile, load_knowledge(RULES), scenario.as_of).to_json()
    assert done.stdout == expected
    assert list(tmp_path.iterdir()) == []  # nothing written where it ran


@pytest.mark.package
def test_the_wheel_carries_the_rules_directory_as_it_is(installed: Path) -> None:
    (packaged,) = installed.glob("lib/python*/site-packages/bonecds/_rules")
    names = sorted(path.name for path in packaged.iterdir())
    assert names == sorted(path.name for path in RULES.iterdir() if path.name != "__pycache__")
    for name in names:
        assert (packaged / name).read_bytes() == (RULES / name).read_bytes(), name


@pytest.mark.package
def test_a_plain_install_has_no_web_stack_and_serve_names_its_extra(
    installed: Path, tmp_path: Path
) -> None:
    python = str(installed / "bin" / "python")
    for module in ("fastapi", "uvicorn", "dask", "distributed", "psycopg", "jwt"):
        probe = f"import importlib.util as u, sys; sys.exit(u.find_spec('{module}') is not None)"
        assert subprocess.run([python, "-c", probe]).returncode == 0, f"{module} is installed"
    done = _bonecds(installed, "serve", cwd=tmp_path)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == (
        "error: this needs the 'service' extra (fastapi is not installed): "
        "pip install 'bonecds[service]'\n"
    )


@pytest.mark.package
def test_with_no_rules_anywhere_the_message_names_both_ways_to_give_them(
    installed: Path, tmp_path: Path
) -> None:
    venv = tmp_path / "venv"
    shutil.copytree(installed, venv, symlinks=True)
    (packaged,) = venv.glob("lib/python*/site-packages/bonecds/_rules")
    shutil.rmtree(packaged)
    done = _bonecds(venv, "evaluate", str(SAMPLE), cwd=tmp_path)
    assert (done.returncode, done.stdout) == (2, "")
    assert "rules directory not found" in done.stderr
    assert "--rules" in done.stderr
    assert "BONECDS_RULES" in done.stderr
    assert len(done.stderr.splitlines()) == 1
    assert "Traceback" not in done.stderr


# In-process checks of the missing-extra messages: the import is made to fail, as it does when
# the extra is not installed (sys.modules[name] = None makes `import name` raise).
runner = CliRunner()


def test_serve_without_the_service_extra_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "uvicorn", None)
    result = runner.invoke(app, ["serve", "--insecure-dev"], catch_exceptions=False)
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == (
        "error: this needs the 'service' extra (uvicorn is not installed): "
        "pip install 'bonecds[service]'\n"
    )


def test_a_dask_batch_without_the_dask_extra_names_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "distributed", None)
    cohort = tmp_path / "cohort.ndjson"
    cohort.write_text('{"ecog": 1}\n', encoding="utf-8")
    out = tmp_path / "out.ndjson"
    args = ["batch", str(cohort), "-o", str(out), "--engine", "dask", "--rules", str(RULES)]
    result = runner.invoke(app, [*args, "--as-of", "2026-11-23"], catch_exceptions=False)
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == (
        "error: this needs the 'dask' extra (distributed is not installed): "
        "pip install 'bonecds[dask]'\n"
    )
    assert not out.exists()


def test_a_postgresql_feedback_store_without_psycopg_names_the_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from bonecds.cds_hooks._feedback import open_store

    monkeypatch.setitem(sys.modules, "psycopg", None)
    with pytest.raises(InputError, match=r"'service' extra \(psycopg is not installed\)"):
        open_store("postgresql://127.0.0.1:9/none")
