"""`bonecds batch`: input order, determinism across workers, bad records, resume, CLI."""

from __future__ import annotations

import json
import multiprocessing
import os
import pty
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from bonecds import Knowledge, evaluate
from bonecds.cli.app import app
from bonecds.cohort import run as batch_module
from bonecds.cohort.output import OutputShape
from bonecds.cohort.run import BatchInterrupted, BatchOptions, run_batch
from bonecds.errors import InputError
from bonecds.testing.synthetic import synthetic_cohort
from tests.conftest import AS_OF, ROOT, RULES

SECRET = "Jane-Q-Patient-4711"  # must never reach an errors file, a summary or stderr
BAD_LINES = {
    41: "{not json",
    42: json.dumps({"ecog": 9, "sex": "x", "patient_id": SECRET}),
    43: "[1, 2]",
    45: json.dumps({"labs": {"scr": {"value": 1.0, "unit": SECRET}}}),
    46: json.dumps({"ecog": 1, "nickname": SECRET}),
}
runner = CliRunner()
SUMMARY = OutputShape("summary")


@pytest.fixture(scope="module")
def cohort_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """120 synthetic profiles with bad records and a blank line among them."""
    profiles = iter(synthetic_cohort(120, seed=5))
    lines = []
    for number in range(1, 127):
        if number == 44:
            lines.append("")
        else:
            lines.append(BAD_LINES.get(number) or json.dumps(next(profiles)))
    path = tmp_path_factory.mktemp("cohort") / "cohort.ndjson"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _run(source: Path, out: Path, knowledge: Knowledge, **options: Any) -> batch_module.Summary:
    return run_batch(BatchOptions(source, out, as_of=AS_OF, chunk_size=16, **options), knowledge)


@pytest.fixture(scope="module")
def inline_run(
    cohort_file: Path, knowledge: Knowledge, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, batch_module.Summary]:
    out = tmp_path_factory.mktemp("inline") / "reports.ndjson"
    return out, _run(cohort_file, out, knowledge, workers=1)


def test_one_report_per_good_record_in_input_order(
    inline_run: tuple[Path, batch_module.Summary], cohort_file: Path, knowledge: Knowledge
) -> None:
    out, summary = inline_run
    lines = out.read_text(encoding="utf-8").splitlines()
    good = [
        line
        for n, line in enumerate(cohort_file.read_text().splitlines(), 1)
        if line and n not in BAD_LINES
    ]
    assert len(lines) == len(good) == summary.reports == 120
    ids = [json.loads(line)["patient_id"] for line in lines]
    assert ids == [f"synthetic-{i}" for i in range(120)]
    # Each line is the canonical report, on one line.
    for line, source in list(zip(lines, good, strict=True))[::17]:
        assert json.loads(line) == json.loads(
            evaluate(json.loads(source), knowledge, AS_OF).to_json()
        )
        assert line == json.dumps(
            json.loads(line), sort_keys=True, ensure_ascii=False, separators=(",", ":")
        )


def test_bad_records_are_reported_by_line_without_values(
    inline_run: tuple[Path, batch_module.Summary],
) -> None:
    out, summary = inline_run
    errors = [json.loads(line) for line in Path(f"{out}.errors.jsonl").read_text().splitlines()]
    assert sorted({entry["line"] for entry in errors}) == sorted(BAD_LINES)
    assert {tuple(entry) for entry in errors} == {("line", "field", "message")}
    fields = {(entry["line"], entry["field"]) for entry in errors}
    assert {(42, "ecog"), (42, "sex"), (45, "labs.scr"), (46, "nickname")} <= fields
    assert summary.bad_records == 5
    assert summary.records == 125  # the blank line is not a record
    everything = Path(f"{out}.errors.jsonl").read_text() + json.dumps(summary.__dict__)
    assert SECRET not in everything
    assert "x'" not in everything  # the bad sex value is not echoed either


def test_summary_counts_first_ranked_options(inline_run: tuple[Path, batch_module.Summary]) -> None:
    out, summary = inline_run
    tops = [
        (json.loads(line)["ranked"] or [{"id": "(none ranked)"}])[0]["id"]
        for line in out.read_text().splitlines()
    ]
    assert summary.by_top_option == {top: tops.count(top) for top in set(tops)}
    assert sum(summary.by_error.values()) == 6  # five bad records, one with two problems


@pytest.fixture(params=["forked", "spawned"])
def start_method(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """How the pool's workers start: forked when this process runs no other thread (on
    Linux), spawned when it does (a thread is kept alive for the run). Yields the method."""
    used: list[str] = []
    get_context = multiprocessing.get_context

    def recorded(method: str | None = None) -> Any:
        used.append(str(method))
        return get_context(method)

    # runners calls multiprocessing.get_context through the module, so patching it here counts
    monkeypatch.setattr(multiprocessing, "get_context", recorded)
    release = threading.Event()
    if request.param == "spawned":
        threading.Thread(target=release.wait, daemon=True).start()
    elif threading.active_count() > 1 or sys.platform != "linux":
        pytest.skip("forking needs Linux and no other thread in this process")
    yield request.param
    release.set()
    assert used == [{"forked": "fork", "spawned": "spawn"}[request.param]]


def test_output_is_identical_for_any_number_of_workers(
    inline_run: tuple[Path, batch_module.Summary],
    cohort_file: Path,
    knowledge: Knowledge,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    start_method: str,
) -> None:
    out, summary = inline_run
    pooled = tmp_path / "pooled.ndjson"
    temporary = tmp_path / "tmp"  # where a spawned pool's copy of the knowledge is written
    temporary.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temporary))
    assert _run(cohort_file, pooled, knowledge, workers=2) == summary
    assert pooled.read_bytes() == out.read_bytes()
    assert Path(f"{pooled}.errors.jsonl").read_bytes() == Path(f"{out}.errors.jsonl").read_bytes()
    assert list(temporary.iterdir()) == []  # removed with the pool


def test_resume_after_an_interruption_gives_the_same_bytes(
    inline_run: tuple[Path, batch_module.Summary],
    cohort_file: Path,
    knowledge: Knowledge,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(batch_module, "CHECKPOINT_SECONDS", 0.0)
    out = tmp_path / "resumed.ndjson"
    calls: list[int] = []

    def stop_after_three_chunks(done: int) -> None:
        calls.append(done)
        if len(calls) == 4:  # the first call reports the starting point
            raise KeyboardInterrupt

    options = BatchOptions(cohort_file, out, as_of=AS_OF, chunk_size=16)
    with pytest.raises(BatchInterrupted):
        run_batch(options, knowledge, progress=stop_after_three_chunks)
    with out.open("ab") as stream:
        stream.write(b'{"half a line written when the process died')
    resumed = run_batch(BatchOptions(cohort_file, out, chunk_size=16, resume=True), knowledge)
    reference, summary = inline_run
    assert out.read_bytes() == reference.read_bytes()
    assert (
        Path(f"{out}.errors.jsonl").read_bytes() == Path(f"{reference}.errors.jsonl").read_bytes()
    )
    assert resumed == summary
    # Resuming a finished run changes nothing and gives the same summary.
    again = run_batch(BatchOptions(cohort_file, out, chunk_size=16, resume=True), knowledge)
    assert again == summary
    assert out.read_bytes() == reference.read_bytes()


def test_resume_refuses_a_different_run(
    cohort_file: Path, knowledge: Knowledge, tmp_path: Path
) -> None:
    out = tmp_path / "r.ndjson"
    with pytest.raises(InputError, match="nothing to resume"):
        run_batch(BatchOptions(cohort_file, out, resume=True), knowledge)
    run_batch(BatchOptions(cohort_file, out, as_of=AS_OF), knowledge)
    other_day = AS_OF.replace(day=1)
    with pytest.raises(InputError, match="as_of"):
        run_batch(BatchOptions(cohort_file, out, as_of=other_day, resume=True), knowledge)
    changed = tmp_path / "changed.ndjson"
    changed.write_bytes(cohort_file.read_bytes())
    run_batch(BatchOptions(changed, out, as_of=AS_OF), knowledge)
    changed.write_bytes(cohort_file.read_bytes() + b"{}\n")
    with pytest.raises(InputError, match="input_size"):
        run_batch(BatchOptions(changed, out, resume=True), knowledge)
    # The same input with another output: resuming would append Chinese reports to English
    # ones, or CSV rows to JSON lines.
    run_batch(BatchOptions(cohort_file, out, as_of=AS_OF), knowledge)
    for shape, changed_field in ((OutputShape(language="zh"), "language"), (SUMMARY, "format")):
        with pytest.raises(InputError, match=changed_field):
            run_batch(BatchOptions(cohort_file, out, resume=True, shape=shape), knowledge)


def test_batch_writes_reports_in_the_language_asked(
    cohort_file: Path, knowledge: Knowledge, tmp_path: Path
) -> None:
    """`--lang zh`: each line is the report evaluate(..., language="zh") gives, and a FHIR
    record's mapping notes are in Chinese too."""
    out = tmp_path / "zh.ndjson"
    shape = OutputShape(language="zh")
    run_batch(BatchOptions(cohort_file, out, as_of=AS_OF, shape=shape), knowledge)
    reports = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    first_profile = next(iter(synthetic_cohort(120, seed=5)))
    expected = evaluate(first_profile, knowledge, AS_OF, language="zh")
    assert reports[0] == json.loads(expected.to_json())
    assert {report["language"] for report in reports} == {"zh"}
    export = tmp_path / "export"
    export.mkdir()
    _bulk_export(export)
    fhir = tmp_path / "fhir-zh.ndjson"
    run_batch(BatchOptions(export, fhir, as_of=AS_OF, shape=shape), knowledge)
    first = json.loads(fhir.read_text(encoding="utf-8").splitlines()[0])
    notes = [n["text"] for n in first["notes"] if n["rules"] == ["fhir-mapping"]]
    assert notes
    assert all("\uff1a" in note and "not used" not in note for note in notes), notes


def _cli(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["batch", *args, "--rules", str(RULES)], catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_cli_batch_writes_reports_and_a_summary(cohort_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "cli.ndjson"
    code, stdout, stderr = _cli(
        str(cohort_file), "--out", str(out), "--workers", "1", "--as-of", "2026-11-23"
    )
    assert code == 0, stderr
    assert stderr == ""  # not a terminal: no progress bar
    assert stdout.startswith("125 records: 120 reports")
    assert "first-ranked option:" in stdout
    assert "errors:" in stdout
    assert SECRET not in stdout
    assert len(out.read_text().splitlines()) == 120
    chinese = tmp_path / "zh.ndjson"
    code, _, stderr = _cli(str(cohort_file), "-o", str(chinese), "-w", "1", "--lang", "zh")
    assert code == 0, stderr
    assert json.loads(chinese.read_text(encoding="utf-8").splitlines()[0])["language"] == "zh"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--as-of", "23/11/2026"], "is not a date"),
        (["--scheduler", "tcp://127.0.0.1:8786"], "--scheduler needs --engine dask"),
    ],
)
def test_cli_batch_bad_arguments_exit_2(
    cohort_file: Path, tmp_path: Path, extra: list[str], message: str
) -> None:
    code, stdout, stderr = _cli(str(cohort_file), "--out", str(tmp_path / "o.ndjson"), *extra)
    assert code == 2
    assert message in stderr
    assert len(stderr.strip().splitlines()) == 1
    assert "Traceback" not in stderr
    assert stdout == ""


def test_cli_batch_missing_input_exits_2(tmp_path: Path) -> None:
    code, _, stderr = _cli(str(tmp_path / "absent.ndjson"), "--out", str(tmp_path / "o"))
    assert code == 2
    assert "no such input file" in stderr


def _bulk_export(directory: Path) -> dict[str, Any]:
    """The FHIR test Bundle as a Bulk Data export, with a second patient and a bad Patient line."""
    bundle = json.loads((ROOT / "tests" / "data" / "fhir" / "breast-bone-mets.json").read_text())
    files: dict[str, list[str]] = {}
    for copy in ("", "-2"):
        for entry in bundle["entry"]:
            text = json.dumps(entry["resource"]).replace("pt-breast-1", f"pt-breast-1{copy}")
            resource = json.loads(text)
            if resource["resourceType"] != "Patient":  # its id was renamed with the references
                resource["id"] = f"{resource['id']}{copy}"
            files.setdefault(resource["resourceType"], []).append(json.dumps(resource))
    files["Patient"].append("{truncated")
    for kind, lines in files.items():
        (directory / f"{kind}.ndjson").write_text("\n".join(lines) + "\n")
    return dict(bundle)


def test_fhir_bulk_data_directory(knowledge: Knowledge, tmp_path: Path) -> None:
    export = tmp_path / "export"
    export.mkdir()
    _bulk_export(export)
    out = tmp_path / "fhir.ndjson"
    summary = run_batch(BatchOptions(export, out, as_of=AS_OF), knowledge)
    assert (summary.records, summary.reports, summary.bad_records) == (3, 2, 1)
    first, second = (json.loads(line) for line in out.read_text().splitlines())
    sample = ROOT / "tests" / "data" / "fhir" / "breast-bone-mets.json"
    command = ["evaluate", str(sample), "-f", "json", "--as-of", AS_OF.isoformat()]
    shown = runner.invoke(app, [*command, "--rules", str(RULES)])
    assert first == json.loads(shown.stdout)  # the same report, its mapping notes included
    assert any(note["rules"] == ["fhir-mapping"] for note in first["notes"])
    assert second["patient_id"] == "pt-breast-1-2"
    assert second["ranked"] == first["ranked"]
    errors = [json.loads(line) for line in Path(f"{out}.errors.jsonl").read_text().splitlines()]
    assert [(entry["line"], entry["field"]) for entry in errors] == [(3, "<record>")]


def test_fhir_directory_with_a_repeated_key_refuses_that_patient_naming_the_key(
    knowledge: Knowledge, tmp_path: Path
) -> None:
    _bulk_export(tmp_path)
    observations = (tmp_path / "Observation.ndjson").read_text().splitlines()
    second = next(i for i, line in enumerate(observations) if "pt-breast-1-2" in line)
    observations[second] = observations[second].replace(
        '"status": "final"', '"status": "final", "status": "cancelled"', 1
    )
    assert '"status": "cancelled"' in observations[second]
    (tmp_path / "Observation.ndjson").write_text("\n".join(observations) + "\n")
    out = tmp_path / "out.ndjson"
    summary = run_batch(BatchOptions(tmp_path, out, as_of=AS_OF), knowledge)
    assert (summary.records, summary.reports, summary.bad_records) == (3, 1, 2)
    errors = [json.loads(line) for line in Path(f"{out}.errors.jsonl").read_text().splitlines()]
    assert errors[0]["line"] == 2
    assert errors[0]["field"].startswith("entry.")
    assert errors[0]["field"].endswith(".resource.status")
    assert errors[0]["message"].startswith("duplicate key")


def test_fhir_directory_with_an_unreadable_resource_stops_before_evaluating(
    tmp_path: Path,
) -> None:
    _bulk_export(tmp_path)
    with (tmp_path / "Observation.ndjson").open("a") as stream:
        stream.write('{"resourceType": "Observation", "subject": \n')
    out = tmp_path / "out.ndjson"
    code, _, stderr = _cli(str(tmp_path), "--out", str(out), "--workers", "1")
    assert code == 2
    assert "Observation.ndjson:17: not a FHIR resource" in stderr
    assert out.read_text() == ""


def test_progress_bar_only_on_a_terminal_and_output_unchanged(
    inline_run: tuple[Path, batch_module.Summary], cohort_file: Path, tmp_path: Path
) -> None:
    out = tmp_path / "tty.ndjson"
    leader, follower = pty.openpty()
    command = [sys.executable, "-m", "bonecds", "batch", str(cohort_file), "--out", str(out)]
    command += ["--workers", "2", "--as-of", AS_OF.isoformat(), "--rules", str(RULES)]
    env = {**os.environ, "COLUMNS": "120", "TERM": "xterm"}
    child = subprocess.Popen(command, stderr=follower, stdout=subprocess.DEVNULL, env=env)
    os.close(follower)
    shown = _read_all(leader)  # read while it runs, so a full terminal buffer never blocks it
    assert child.wait(timeout=120) == 0
    assert "profiles/s" in shown
    assert "ETA" in shown
    assert "125/125" in shown
    assert out.read_bytes() == inline_run[0].read_bytes()


def test_the_progress_bar_runs_no_thread_so_workers_can_fork(
    cohort_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """rich's refresh thread would make every terminal run spawn its workers (0.25 s each)."""
    from bonecds.cli._batch import _progress_bar

    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    threads = threading.active_count()
    options = BatchOptions(cohort_file, tmp_path / "out.ndjson", as_of=AS_OF)
    with _progress_bar(options) as update:
        assert update is not None
        update(0)
        update(16)
        assert threading.active_count() == threads


def _read_all(descriptor: int) -> str:
    chunks = []
    while True:
        try:
            data = os.read(descriptor, 65536)
        except OSError:  # the terminal closed
            break
        if not data:
            break
        chunks.append(data)
    os.close(descriptor)
    return b"".join(chunks).decode("utf-8", "replace")
