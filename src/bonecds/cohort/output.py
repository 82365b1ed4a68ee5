"""What `bonecds batch` writes per patient: the full report (default), a summary row (CSV or
Parquet) for cohort analysis, or an HTML page.

Each worker encodes its own records, so the parent only appends bytes: with the summary
format the parent's writing is off the critical path (a row is ~0.3 KiB, a report ~15 KiB).
"""

from __future__ import annotations

import csv
import io
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from bonecds._json import compact_bytes
from bonecds.errors import InputError

__all__ = [
    "FULL_REPORT",
    "SUMMARY_COLUMNS",
    "OutputShape",
    "csv_line",
    "finish",
    "page_name",
    "prepare",
    "report_line",
    "stream_path",
]

FORMATS = ("json", "summary", "parquet", "html")
# The knowledge base by version (for people) and by content digest (exact: two runs with the
# same digest ran the same rules).
SUMMARY_COLUMNS = (
    "line",
    "patient_id",
    "first_option",
    "ranked",
    "contraindicated",
    "cautions",
    "data_requests",
    "knowledge_version",
    "knowledge_digest",
)
LIST_COLUMNS = frozenset({"ranked", "contraindicated", "cautions", "data_requests"})
PARQUET_EXTRA = "pip install 'bonecds[parquet]'"
ROW_GROUP = 10_000
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class OutputShape:
    """How each record is written: its format and report language; `directory` holds the HTML
    pages of the `html` format."""

    format: str = "json"
    directory: str = ""
    language: str = "en"

    def encode(self, line: int, data: dict[str, Any], links: dict[str, str]) -> bytes:
        """One record's bytes for the output stream (one line, with its newline)."""
        if self.format == "json":
            return report_line(data) + b"\n"
        row = summary_row(line, data)
        if self.format == "summary":
            return csv_line([row[c] for c in SUMMARY_COLUMNS])
        if self.format == "parquet":
            return orjson.dumps(row) + b"\n"
        name = write_page(Path(self.directory), line, data, links)
        return csv_line([line, data.get("patient_id") or "", name])

    def header(self) -> bytes:
        if self.format == "summary":
            return csv_line(list(SUMMARY_COLUMNS))
        if self.format == "html":
            return csv_line(["line", "patient_id", "file"])
        return b""


FULL_REPORT = OutputShape()


def report_line(data: dict[str, Any]) -> bytes:
    """Canonical JSON on one line (UTF-8), sorted keys as in Report.to_json."""
    return compact_bytes(data, sort_keys=True)


def summary_row(line: int, data: dict[str, Any]) -> dict[str, Any]:
    ranked = [item["id"] for item in data["ranked"]]
    return {
        "line": line,
        "patient_id": data.get("patient_id") or "",
        "first_option": ranked[0] if ranked else "",
        "ranked": ranked,
        "contraindicated": [item["id"] for item in data["contraindicated"]],
        "cautions": [item["id"] for item in data["cautions"]],
        "data_requests": [item["field"] for item in data["data_requests"]],
        "knowledge_version": data["knowledge_version"],
        "knowledge_digest": data["knowledge_digest"],
    }


# A spreadsheet runs a cell that starts with one of these as a formula (OWASP, "CSV
# injection"); patient ids come from the input, so such a cell is prefixed with a quote.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_line(values: list[Any]) -> bytes:
    """One CSV record; a list becomes its items joined by spaces (ids never contain one)."""
    buffer = io.StringIO()
    cells = [_inert(" ".join(v) if isinstance(v, list) else v) for v in values]
    csv.writer(buffer, lineterminator="\n").writerow(cells)
    return buffer.getvalue().encode("utf-8")


def _inert(cell: Any) -> Any:
    return f"'{cell}" if isinstance(cell, str) and cell.startswith(_FORMULA_START) else cell


def page_name(line: int, patient_id: str | None) -> str:
    """`<input line>-<patient id>.html`: unique by line, and only letters, digits, `.`, `_`
    and `-` from the id (no path separators, no leading dot), at most 64 of them."""
    safe = _UNSAFE.sub("_", patient_id or "").strip("._")[:64]
    return f"{line:08d}" + (f"-{safe}" if safe else "") + ".html"


def write_page(directory: Path, line: int, data: dict[str, Any], links: dict[str, str]) -> str:
    from bonecds.report.model import Report
    from bonecds.report.render.html import render_html

    name = page_name(line, data.get("patient_id"))
    page = render_html(Report.model_validate(data), links=links)
    temporary = directory / f".{name}.tmp"
    temporary.write_text(page, encoding="utf-8")
    os.replace(temporary, directory / name)  # a crash never leaves half a page
    return name


class ParquetSink:
    """Summary rows into a Parquet file (pyarrow, an optional extra)."""

    def __init__(self, path: Path) -> None:
        pyarrow, parquet = _pyarrow()
        self._pyarrow = pyarrow
        self.schema = pyarrow.schema(
            [
                (name, pyarrow.int64() if name == "line" else pyarrow.string())
                if name not in LIST_COLUMNS
                else (name, pyarrow.list_(pyarrow.string()))
                for name in SUMMARY_COLUMNS
            ]
        )
        self._writer = parquet.ParquetWriter(str(path), self.schema)

    def write(self, lines: bytes) -> None:
        rows = [orjson.loads(line) for line in lines.splitlines() if line]
        if rows:
            table = self._pyarrow.Table.from_pylist(rows, schema=self.schema)
            self._writer.write_table(table)

    def close(self) -> None:
        self._writer.close()


def _pyarrow() -> tuple[Any, Any]:
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError:
        raise InputError(f"--format parquet needs pyarrow: {PARQUET_EXTRA}") from None
    return pyarrow, pyarrow.parquet


def prepare(shape: OutputShape, output: Path) -> None:
    """Refuse, before any work, what this format cannot do; make the HTML directory."""
    if shape.format not in FORMATS:
        raise InputError(f"--format {shape.format}: use one of {', '.join(FORMATS)}")
    if shape.format == "parquet":
        _pyarrow()
    if shape.format == "html":
        if output.exists() and not output.is_dir():
            raise InputError(f"{output}: --format html writes a directory of pages; name one")
        output.mkdir(parents=True, exist_ok=True)


def stream_path(shape: OutputShape, output: Path) -> Path:
    """The file the parent appends to: the output itself, the HTML directory's index, or the
    rows a Parquet file is built from when the run completes (so --resume works for all)."""
    if shape.format == "html":
        return output / "index.csv"
    if shape.format == "parquet":
        return output.with_name(output.name + ".rows.jsonl")
    return output


def finish(shape: OutputShape, output: Path) -> None:
    """After a complete run: build the Parquet file from its rows, one row group per 10,000."""
    if shape.format != "parquet":
        return
    rows = stream_path(shape, output)
    sink = ParquetSink(output)
    with rows.open("rb") as stream:
        batch: list[bytes] = []
        for line in stream:
            batch.append(line)
            if len(batch) >= ROW_GROUP:
                sink.write(b"".join(batch))
                batch = []
        sink.write(b"".join(batch))
    sink.close()
    rows.unlink()
