"""Docs that tests keep honest: README commands, API example, documented ids and commands."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from bonecds import RuleError
from bonecds.cli.app import app
from bonecds.knowledge.schema import dump, rule_file_schema
from bonecds.testing.sync import CONTRACT_IDS
from tests.conftest import ROOT, RULES

README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_readme_opens_with_the_notice_and_two_commands() -> None:
    head = README.split("## What it is")[0]
    assert "not a medical device" in head.lower()
    commands = re.findall(r"```sh\n(.+?)\n```", head)
    assert len(commands) == 2
    assert "bonecds evaluate patient_fixtures/" in commands[0]
    assert "scripts/test.sh" in commands[1]


def test_ci_runs_the_readme_test_command() -> None:
    command = re.findall(r"```sh\n(.+?)\n```", README)[1]
    assert command.replace("$PWD", '"$PWD"').replace('""', '"') in (ROOT / ".ci" / "run").read_text(
        encoding="utf-8"
    ).replace("$PWD", '"$PWD"').replace('""', '"')


def test_readme_sample_patient_exists_and_evaluates() -> None:
    sample = re.search(r"bonecds evaluate (patient_fixtures/\S+\.yaml)", README)
    assert sample
    result = subprocess.run(
        [sys.executable, "-m", "bonecds", "evaluate", sample.group(1), "--rules", str(RULES)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "not a medical device" in result.stdout


def test_readme_python_example_runs() -> None:
    example = re.search(r"```python\n(.+?)\n```", README, re.S)
    assert example
    code = example.group(1).replace('"rules"', repr(str(RULES)))
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=False
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.split("\n", 1)[1])["disclaimer"]


def test_every_id_beyond_the_contract_is_documented() -> None:
    vocabulary = yaml.safe_load((RULES / "vocabulary.yaml").read_text(encoding="utf-8"))[
        "vocabulary"
    ]
    missing = [
        name for name in vocabulary if name not in CONTRACT_IDS and f"`{name}`" not in README
    ]
    assert missing == []


def test_every_command_is_documented() -> None:
    names = [command.name for command in app.registered_commands]
    for group in app.registered_groups:
        assert group.typer_instance is not None  # typer's type allows None; add_typer sets it
        names += [f"rules {c.name}" for c in group.typer_instance.registered_commands]
    assert names
    assert [name for name in names if f"bonecds {name}" not in README] == []


def test_committed_rule_schema_is_current() -> None:
    committed = (RULES / "rule-file.schema.json").read_text(encoding="utf-8")
    assert committed == dump(rule_file_schema()), (
        "run: bonecds schema rules > rules/rule-file.schema.json"
    )


def test_rule_files_validate_against_the_schema() -> None:
    import jsonschema

    from bonecds.knowledge.load import RESERVED_FILES

    schema = rule_file_schema()
    for path in sorted(Path(RULES).glob("*.yaml")):
        if path.name in RESERVED_FILES:
            continue
        jsonschema.validate(yaml.safe_load(path.read_text(encoding="utf-8")), schema)


def test_committed_knowledge_catalogue_is_current() -> None:
    from bonecds.knowledge.load import load_rules
    from bonecds.report.catalogue import render_catalogue

    committed = (ROOT / "docs" / "knowledge-catalogue.md").read_text(encoding="utf-8")
    assert committed == render_catalogue(load_rules(ROOT / "rules")), (
        "run: bonecds rules docs > docs/knowledge-catalogue.md"
    )


def test_catalogue_documents_every_rule() -> None:
    from bonecds.knowledge.load import load_rules

    committed = (ROOT / "docs" / "knowledge-catalogue.md").read_text(encoding="utf-8")
    missing = [
        r.id
        for r in load_rules(ROOT / "rules").rules
        if f"### {r.catalogue} `{r.id}`" not in committed
    ]
    assert missing == []


@pytest.mark.parametrize(
    ("key", "value"),
    [("id", "Bad_ID"), ("id", "two  words"), ("version", 0), ("version", True), ("version", "2")],
)
def test_loader_and_schema_refuse_the_same_rule(tmp_path: Path, key: str, value: object) -> None:
    """The committed schema (for editors) and the loader agree: what one refuses, so does the
    other (they once drifted: the loader took `id: Bad_ID, version: 0`)."""
    import jsonschema

    from bonecds.knowledge.load import load_rules

    schema = json.loads((ROOT / "rules" / "rule-file.schema.json").read_text(encoding="utf-8"))
    for name in ("settings.yaml", "sources.yaml", "vocabulary.yaml", "catalogue.yaml"):
        shutil.copy(RULES / name, tmp_path / name)
    data = yaml.safe_load((RULES / "f-giant-cell-tumour.yaml").read_text(encoding="utf-8"))
    data["rules"][0][key] = value
    (tmp_path / "f-giant-cell-tumour.yaml").write_text(
        yaml.safe_dump(data, allow_unicode=True), "utf-8"
    )
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(data, schema)
    with pytest.raises(RuleError, match=rf"invalid-value.*{key}|{key}.*invalid-value"):
        load_rules(tmp_path)


DOCS = {
    path.name: path.read_text(encoding="utf-8")
    for path in [ROOT / "README.md", *(ROOT / "docs").glob("*.md")]
}


def _command_examples() -> list[tuple[str, list[str]]]:
    """(document, words) of every `bonecds ...` line in a shell block of the README and docs/."""
    examples = []
    for name, text in DOCS.items():
        for block in re.findall(r"```(?:sh|bash|console)\n(.+?)```", text, re.S):
            for line in block.splitlines():
                words = line.split("#")[0].replace("$ ", "").split()
                if words[:1] == ["bonecds"]:
                    examples.append((name, words[1:]))
    return examples


@pytest.mark.parametrize(("document", "words"), _command_examples(), ids=lambda v: str(v)[:60])
def test_documented_commands_and_options_exist(document: str, words: list[str]) -> None:
    """Every command line the docs show names a real command, and every option it uses is one
    that command accepts (a renamed option fails here, not in a reader's terminal)."""
    from typer.testing import CliRunner

    command = [w for w in words[:2] if re.fullmatch(r"[a-z][a-z-]*", w)]
    if len(command) == 2 and command[0] not in {"rules"}:
        command = command[:1]
    result = CliRunner().invoke(app, [*command, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, f"{document}: bonecds {' '.join(command)}"
    for option in (w.split("=")[0] for w in words if re.fullmatch(r"--?[a-z][a-z-]*(=.*)?", w)):
        assert re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", result.output), (
            f"{document}: `bonecds {' '.join(command)}` has no option {option}"
        )
