"""`bonecds batch --format summary | parquet | html`: cohort output for analysis and review."""

from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from bonecds import Knowledge
from bonecds.cli.app import app
from bonecds.cohort import run as batch_module
from bonecds.cohort.output import SUMMARY_COLUMNS, OutputShape, page_name
from bonecds.cohort.run import BatchInterrupted, BatchOptions, run_batch
from bonecds.testing.synthetic import synthetic_cohort
from tests.conftest import AS_OF, RULES

HOSTILE_ID = "../../etc/<script>alert(1)</script>"


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> Path:
    profiles = list(synthetic_cohort(40, seed=11))
    profiles[5]["patient_id"] = HOSTILE_ID
    lines = [json.dumps(p) for p in profiles]
    lines.insert(7, "{not json")  # line 8: a bad record gets no row
    path = tmp_path_factory.mktemp("cohort") / "cohort.ndjson"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _run(cohort: Path, out: Path, knowledge: Knowledge, fmt: str, workers: int = 1) -> None:
    shape = OutputShape(fmt, str(out) if fmt == "html" else "")
    options = BatchOptions(cohort, out, as_of=AS_OF, workers=workers, chunk_size=8, shape=shape)
    run_batch(options, knowledge)


@pytest.fixture(scope="module")
def full_reports(
    cohort: Path, knowledge: Knowledge, tmp_path_factory: pytest.TempPathFactory
) -> list[dict[str, Any]]:
    out = tmp_path_factory.mktemp("json") / "reports.ndjson"
    _run(cohort, out, knowledge, "json")
    return [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]


def _summary_rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as stream:
        return list(csv.DictReader(stream))


def test_summary_has_one_row_per_report_with_the_reports_ids_in_order(
    cohort: Path, knowledge: Knowledge, tmp_path: Path, full_reports: list[dict[str, Any]]
) -> None:
    out = tmp_path / "summary.csv"
    _run(cohort, out, knowledge, "summary")
    rows = _summary_rows(out)
    assert tuple(rows[0]) == SUMMARY_COLUMNS
    assert len(rows) == len(full_reports) == 40
    assert "8" not in {row["line"] for row in rows}  # the bad record
    for row, report in zip(rows, full_reports, strict=True):
        ranked = [item["id"] for item in report["ranked"]]
        assert row["patient_id"] == report["patient_id"]
        assert row["ranked"].split() == ranked
        assert row["first_option"] == (ranked[0] if ranked else "")
        assert row["contraindicated"].split() == [c["id"] for c in report["contraindicated"]]
        assert row["cautions"].split() == [c["id"] for c in report["cautions"]]
        assert row["data_requests"].split() == [r["field"] for r in report["data_requests"]]
        assert row["knowledge_version"] == report["knowledge_version"]
        assert row["knowledge_digest"] == report["knowledge_digest"] == knowledge.base.digest
        assert row["knowledge_digest"].startswith("sha256:")


def test_summary_is_the_same_bytes_for_one_and_two_workers(
    cohort: Path, knowledge: Knowledge, tmp_path: Path
) -> None:
    one, two = tmp_path / "one.csv", tmp_path / "two.csv"
    _run(cohort, one, knowledge, "summary", workers=1)
    _run(cohort, two, knowledge, "summary", workers=2)
    assert one.read_bytes() == two.read_bytes()


def test_parquet_holds_the_summary_rows_with_lists(
    cohort: Path, knowledge: Knowledge, tmp_path: Path
) -> None:
    parquet = pytest.importorskip("pyarrow.parquet", reason="the parquet extra is not installed")
    _run(cohort, tmp_path / "s.csv", knowledge, "summary")
    _run(cohort, tmp_path / "s.parquet", knowledge, "parquet")
    table = parquet.read_table(tmp_path / "s.parquet").to_pylist()
    rows = _summary_rows(tmp_path / "s.csv")
    assert len(table) == len(rows) == 40
    assert not (tmp_path / "s.parquet.rows.jsonl").exists()
    for record, row in zip(table, rows, strict=True):
        assert record["ranked"] == row["ranked"].split()
        assert str(record["line"]) == row["line"]


def test_parquet_without_pyarrow_names_the_extra(
    cohort: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    out = tmp_path / "s.parquet"
    result = CliRunner().invoke(
        app, ["batch", str(cohort), "-o", str(out), "-f", "parquet", "--rules", str(RULES)]
    )
    assert result.exit_code == 2
    assert "pip install 'bonecds[parquet]'" in result.stderr
    assert "Traceback" not in result.output
    assert not out.exists()


def test_html_writes_one_escaped_page_per_patient_with_safe_names(
    cohort: Path, knowledge: Knowledge, tmp_path: Path
) -> None:
    out = tmp_path / "pages"
    _run(cohort, out, knowledge, "html", workers=2)
    pages = sorted(p.name for p in out.glob("*.html"))
    assert len(pages) == 40
    assert all(p.parent == out for p in out.rglob("*.html"))  # nothing escaped the directory
    hostile = out / page_name(6, HOSTILE_ID)
    assert hostile.name == "00000006-etc_script_alert_1_script.html"
    page = hostile.read_text(encoding="utf-8")
    assert "<script" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "The logic, rule by rule" in page  # each page carries the basis for review
    index = _summary_rows(out / "index.csv")
    assert [row["file"] for row in index] == pages


@pytest.mark.parametrize(
    ("patient_id", "name"),
    [
        (None, "00000003.html"),
        ("", "00000003.html"),
        ("..", "00000003.html"),
        (".hidden", "00000003-hidden.html"),
        ("a/b\\c d", "00000003-a_b_c_d.html"),
        ("x" * 200, "00000003-" + "x" * 64 + ".html"),
        ("患者1", "00000003-1.html"),
    ],
)
def test_page_names_are_safe(patient_id: str | None, name: str) -> None:
    assert page_name(3, patient_id) == name


@pytest.mark.parametrize("fmt", ["summary", "parquet"])
def test_an_interrupted_summary_run_resumes_to_the_same_output(
    cohort: Path, knowledge: Knowledge, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: str
) -> None:
    if fmt == "parquet":
        pytest.importorskip("pyarrow", reason="the parquet extra is not installed")
    monkeypatch.setattr(batch_module, "CHECKPOINT_SECONDS", 0.0)
    reference, out = tmp_path / f"reference.{fmt}", tmp_path / f"resumed.{fmt}"
    _run(cohort, reference, knowledge, fmt)
    calls: list[int] = []

    def stop_after_two_chunks(done: int) -> None:
        calls.append(done)
        if len(calls) == 3:  # the first call reports the starting point
            raise KeyboardInterrupt

    shape = OutputShape(fmt)
    options = BatchOptions(cohort, out, as_of=AS_OF, chunk_size=8, shape=shape)
    with pytest.raises(BatchInterrupted):
        run_batch(options, knowledge, progress=stop_after_two_chunks)
    resumed = BatchOptions(cohort, out, chunk_size=8, shape=shape, resume=True)
    run_batch(resumed, knowledge)
    if fmt == "summary":
        assert out.read_bytes() == reference.read_bytes()  # one header, no repeated rows
    else:
        import pyarrow.parquet as parquet

        assert parquet.read_table(out).to_pylist() == parquet.read_table(reference).to_pylist()


@pytest.mark.parametrize("patient_id", ['=HYPERLINK("http://x")', "+1", "-2", "@SUM(A1)", "\tx"])
def test_a_summary_cell_that_a_spreadsheet_would_run_is_made_inert(patient_id: str) -> None:
    from bonecds.cohort.output import csv_line

    line = csv_line([1, patient_id, ["denosumab"]]).decode()
    cell = next(csv.reader(io.StringIO(line)))[1]
    assert cell == f"'{patient_id}"
    assert csv_line([1, "pt-001", []]).decode() == "1,pt-001,\n"
