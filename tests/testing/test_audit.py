"""Audit records: reports carry digests, `evaluate --audit` + `replay` give "same bytes" for
every scenario, a rule edit is named with the items it changes, the service stores records."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from bonecds import Knowledge, load_knowledge
from bonecds.cds_hooks.app import ServiceConfig, create_app
from bonecds.cli._patients import read_patient
from bonecds.cli.app import app
from bonecds.testing.audit import AuditStore, replay
from bonecds.testing.regression import scenario_files
from tests.cds_hooks.test_app import _bind, _start, _stop, request
from tests.conftest import AS_OF, DATA, FIXTURES, RULES

runner = CliRunner()
SAMPLE = FIXTURES / "sample-breast-bone-mets.yaml"
SCENARIOS = scenario_files([FIXTURES])


def run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args), catch_exceptions=False, env=env)
    return result.exit_code, result.stdout, result.stderr


def test_reports_carry_the_knowledge_and_input_digests(tmp_path: Path) -> None:
    code, out, _ = run("evaluate", str(SAMPLE), "-f", "json", "--rules", str(RULES))
    report = json.loads(out)
    assert code == 0
    assert report["knowledge_digest"].startswith("sha256:")
    profile, _, _ = read_patient(SAMPLE)
    as_json = tmp_path / "p.json"
    as_json.write_text(json.dumps(profile.model_dump(mode="json"), indent=1), encoding="utf-8")
    _, again, _ = run("evaluate", str(as_json), "-f", "json", "--as-of", "2026-11-23")
    assert json.loads(again)["input_digest"] == report["input_digest"]
    copy = tmp_path / "rules"
    shutil.copytree(RULES, copy)
    assert load_knowledge(copy).base.digest == report["knowledge_digest"]
    path = copy / "d-bone-modifying-agents.yaml"
    path.write_text(path.read_text(encoding="utf-8") + "\n", encoding="utf-8")
    assert load_knowledge(copy).base.digest != report["knowledge_digest"]


@pytest.mark.parametrize("fmt", ["text", "markdown"])
def test_evaluate_audit_then_replay_gives_the_same_bytes(fmt: str, tmp_path: Path) -> None:
    record = tmp_path / "audit.json"
    code, out, _ = run("evaluate", str(SAMPLE), "-f", fmt, "--explain", "--audit", str(record))
    assert code == 0
    data = json.loads(record.read_text(encoding="utf-8"))
    assert {"input", "as_of", "knowledge_digest", "engine_version", "bonecds_version"} <= set(data)
    # The text report's width is the terminal's: recorded, so the replay renders it alike.
    width = 100 if fmt == "text" else None
    expected = {"format": fmt, "language": "en", "explain": True, "why_not": None, "width": width}
    assert data["output"] == expected
    code, out, _ = run("replay", str(record), env={"COLUMNS": "132"})
    assert (code, out) == (0, f"same bytes: output {data['output_digest']}\n")


def test_every_scenario_replays_to_the_same_bytes(knowledge: Knowledge, tmp_path: Path) -> None:
    from bonecds.testing.audit import OutputOptions, make_record, render

    options = OutputOptions(format="json", language="zh")
    for path in SCENARIOS:
        profile, as_of, _ = read_patient(path)
        assert as_of is not None
        text, report = render(profile, knowledge, as_of, options)
        record = make_record(profile, knowledge, as_of, options, text, report)
        assert replay(record, knowledge).same, path.name


def test_replay_names_a_rule_edit_and_the_items_it_changes(tmp_path: Path) -> None:
    record = tmp_path / "audit.json"
    assert run("evaluate", str(SAMPLE), "--audit", str(record))[0] == 0
    copy = tmp_path / "rules"
    shutil.copytree(RULES, copy)
    path = copy / "d-bone-modifying-agents.yaml"
    text = path.read_text(encoding="utf-8")
    assert text.count("score: 70") >= 1
    path.write_text(text.replace("score: 70", "score: 71"), encoding="utf-8")
    code, out, _ = run("replay", str(record), "--rules", str(copy))
    lines = out.splitlines()
    assert code == 1
    assert lines[0].startswith("knowledge changed: recorded sha256:")
    assert lines[1].startswith("output changed: recorded sha256:")
    assert "changed items:" in lines
    assert any(line.startswith("  removed: ranked ") and "score 70" in line for line in lines)
    assert any(line.startswith("  added: ranked ") and "score 71" in line for line in lines)


@pytest.mark.parametrize(
    ("content", "message"),
    [("{", ":1: not JSON"), ('{"record": "bonecds-audit/1"}', ": input: Field required")],
)
def test_a_malformed_record_is_one_line_exit_2(tmp_path: Path, content: str, message: str) -> None:
    record = tmp_path / "audit.json"
    record.write_text(content, encoding="utf-8")
    code, out, err = run("replay", str(record))
    assert (code, out) == (2, "")
    assert message in err
    assert len(err.strip().splitlines()) == 1


def test_the_service_stores_records_that_replay(
    knowledge: Knowledge, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    sock, base = _bind()
    config = ServiceConfig(
        base_url=base,
        insecure_dev=True,
        feedback_db=tmp_path / "feedback.sqlite3",
        audit_db=tmp_path / "audit.sqlite3",
        today=lambda: AS_OF,
        knowledge=knowledge,
    )
    caplog.set_level(logging.DEBUG)
    running = _start(create_app(config), sock, base)
    try:
        for language in ("en", "zh"):  # a Chinese request's record replays in Chinese
            url = f"{base}/cds-services/bonecds-patient-view"
            headers = {"Accept-Language": language}
            response = httpx.post(url, json=request("patient-view"), headers=headers, timeout=30)
            assert response.status_code == 200, response.text
    finally:
        _stop(running)
    stored = AuditStore(tmp_path / "audit.sqlite3").records()
    assert [service for service, _ in stored] == ["bonecds-patient-view"] * 2
    assert [record.output.language for _, record in stored] == ["en", "zh"]
    for _, record in stored:
        assert record.input
        assert replay(record, knowledge).same
    assert stored[0][1].input_digest not in caplog.text
    assert json.dumps(stored[0][1].input)[:40] not in caplog.text


def test_a_fhir_input_replays_with_its_mapping_notes(tmp_path: Path) -> None:
    bundle = DATA / "fhir" / "breast-bone-mets.json"
    record = tmp_path / "audit.json"
    code, out, _ = run("evaluate", str(bundle), "--as-of", "2026-11-23", "--audit", str(record))
    assert code == 0
    assert "FHIR: Observation/o-egfr: LOINC 98979-8 not used" in out
    notes = json.loads(record.read_text(encoding="utf-8"))["input_notes"]
    assert any(note.startswith("Observation/o-egfr: LOINC 98979-8 not used") for note in notes)
    assert run("replay", str(record))[:2] == (0, f"same bytes: output {_digest(out)}\n")


def test_a_fhir_input_in_chinese_replays_with_its_chinese_notes(tmp_path: Path) -> None:
    """The record keeps the notes as shown: a zh record replays to the same zh bytes."""
    bundle, record = DATA / "fhir" / "breast-bone-mets.json", tmp_path / "audit.json"
    args = ["--as-of", "2026-11-23", "--lang", "zh", "--audit", str(record)]
    code, out, _ = run("evaluate", str(bundle), *args)
    assert code == 0
    notes = json.loads(record.read_text(encoding="utf-8"))["input_notes"]
    assert [note for note in notes if "eGFR 不是 Cockcroft-Gault" in note] == [notes[0]]
    assert f"FHIR: {notes[0]}" in out
    assert run("replay", str(record))[:2] == (0, f"same bytes: output {_digest(out)}\n")


def _digest(text: str) -> str:
    import hashlib

    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()
