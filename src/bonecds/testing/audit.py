"""Replayable audit records: what was evaluated, against which knowledge, and what came out.

A record holds the patient profile as evaluated (canonical JSON), `as_of`, the output options,
the knowledge base's content digest and version, the engine and bonecds versions, the digest of
the exact output bytes, and the outcome lines (regression.outcome_lines) that name each ranked,
contraindicated, cautioned and requested item. `bonecds replay` evaluates the record again and
says "same bytes", or what differs: the knowledge, the engine, the output and the items.

Records hold patient data: they go to the file the user names (`evaluate --audit FILE`) or to
the service's audit database (opt-in), never to a log.
"""

from __future__ import annotations

import datetime as dt
import difflib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from bonecds._database import Database
from bonecds._digests import canonical_input, digest, input_digest
from bonecds.api import ENGINE_VERSION, Knowledge, evaluate, why_not
from bonecds.errors import InputError
from bonecds.profile.model import PatientProfile, parse_profile
from bonecds.report.model import Report

__all__ = [
    "AuditStore",
    "OutputOptions",
    "make_record",
    "read_record",
    "record_json",
    "render",
    "replay",
    "report_record",
]

RECORD_FORMAT = "bonecds-audit/1"


class OutputOptions(BaseModel):
    """How the output was rendered: what `bonecds evaluate` was asked for."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    format: str = "json"
    language: str = "en"
    explain: bool = False
    why_not: str | None = None
    width: int | None = None  # the text report's width (the terminal's), so replay is exact


class AuditRecord(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    record: str = RECORD_FORMAT
    input: dict[str, Any]
    input_digest: str
    as_of: str
    output: OutputOptions
    knowledge_version: str
    knowledge_digest: str
    engine_version: str
    bonecds_version: str
    output_digest: str
    outcome: list[str]
    input_notes: list[str] = []  # what a FHIR input held that was not used (fhir/read.py), as shown


def render(
    profile: PatientProfile,
    knowledge: Knowledge,
    as_of: dt.date,
    options: OutputOptions,
    notes: list[str] | None = None,
) -> tuple[str, Report | None]:
    """The output `bonecds evaluate` prints for these options (with the FHIR mapping's notes
    on what the input held that was not used), and the report behind it."""
    from bonecds.report.render import render as render_report
    from bonecds.report.render.layout import PIPE_WIDTH
    from bonecds.report.render.text import render_why_not

    if options.why_not is not None:
        answer = why_not(profile, knowledge, options.why_not, as_of, language=options.language)
        if options.format == "json":
            text = answer.to_json()
        else:
            text = render_why_not(answer, options.language)
        return text, None
    # The HTML page always carries the logic: it is the basis for independent review.
    traced = options.explain or options.format == "html"
    report = evaluate(profile, knowledge, as_of, explain=traced, language=options.language)
    report = _with_mapping_notes(report, notes or [])
    links = {key: s.url for key, s in knowledge.base.sources.items() if s.url}
    width = options.width or PIPE_WIDTH
    text = render_report(report, options.format, options.explain, width=width, links=links)
    return text, report


def _with_mapping_notes(report: Report, notes: list[str]) -> Report:
    """The report with the FHIR mapping notes: what the input held that was not used, and why."""
    from bonecds.report.model import NoteOut, mapping_note

    if not notes:
        return report
    extra = [NoteOut.model_validate(mapping_note(note)) for note in notes]
    return report.model_copy(update={"notes": [*report.notes, *extra]})


def make_record(
    profile: PatientProfile,
    knowledge: Knowledge,
    as_of: dt.date,
    options: OutputOptions,
    output: str,
    report: Report | None,
    notes: list[str] | None = None,
) -> AuditRecord:
    from bonecds import __version__
    from bonecds.testing.regression import outcome_lines

    return AuditRecord(
        input=canonical_input(profile),
        input_digest=input_digest(profile),
        as_of=as_of.isoformat(),
        output=options,
        knowledge_version=knowledge.base.version,
        knowledge_digest=knowledge.base.digest,
        engine_version=ENGINE_VERSION,
        bonecds_version=__version__,
        output_digest=digest(output.encode("utf-8")),
        outcome=outcome_lines(report) if report is not None else [],
        input_notes=list(notes or []),
    )


def record_json(record: AuditRecord) -> str:
    return json.dumps(record.model_dump(mode="json"), indent=2, sort_keys=True) + "\n"


def read_record(path: Path) -> AuditRecord:
    """A record from a file; a malformed one is an InputError naming the file and field."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as error:
        reason = error.__class__.__name__
        raise InputError(f"{path}: cannot read the audit record ({reason})") from None
    except json.JSONDecodeError as error:
        raise InputError(f"{path}:{error.lineno}: not JSON ({error.msg})") from None
    return parse_record(data, str(path))


def parse_record(data: Any, source: str) -> AuditRecord:
    try:
        record = AuditRecord.model_validate(data)
    except ValidationError as error:
        first = error.errors(include_url=False)[0]
        where = ".".join(str(part) for part in first["loc"]) or "record"
        raise InputError(f"{source}: {where}: {first['msg']}") from None
    if record.record != RECORD_FORMAT:
        raise InputError(f"{source}: record: expected '{RECORD_FORMAT}', got '{record.record}'")
    return record


@dataclass(frozen=True)
class Replay:
    """The outcome of evaluating a record again."""

    same: bool
    lines: list[str]


def replay(record: AuditRecord, knowledge: Knowledge) -> Replay:
    """Evaluate the record's input again; "same bytes", or every difference found."""
    profile = parse_profile(record.input, "record.input")
    as_of = dt.date.fromisoformat(record.as_of)
    notes = record.input_notes
    output, report = render(profile, knowledge, as_of, record.output, notes)
    again = make_record(profile, knowledge, as_of, record.output, output, report, notes)
    if again.output_digest == record.output_digest:
        return Replay(True, [f"same bytes: output {record.output_digest}"])
    return Replay(False, _differences(record, again))


def _differences(before: AuditRecord, after: AuditRecord) -> list[str]:
    lines = []
    if before.knowledge_digest != after.knowledge_digest:
        lines.append(
            f"knowledge changed: recorded {before.knowledge_digest} (version "
            f"{before.knowledge_version}), now {after.knowledge_digest} (version "
            f"{after.knowledge_version})"
        )
    if (before.engine_version, before.bonecds_version) != (
        after.engine_version,
        after.bonecds_version,
    ):
        lines.append(
            f"engine changed: recorded {before.engine_version}, now {after.engine_version}"
        )
    if before.input_digest != after.input_digest:
        lines.append("input changed: the record's input no longer reads as the same profile")
    lines.append(f"output changed: recorded {before.output_digest}, now {after.output_digest}")
    items = [
        line
        for line in difflib.unified_diff(before.outcome, after.outcome, lineterm="", n=0)
        if not line.startswith(("---", "+++", "@@"))
    ]
    if items:
        lines.append("changed items:")
        lines += [f"  {'removed' if line[0] == '-' else 'added'}: {line[1:]}" for line in items]
    else:
        lines.append("the same items (ids, ranks, scores, doses); the wording or layout changed")
    return lines


def report_record(
    profile: PatientProfile, knowledge: Knowledge, as_of: dt.date, report: Report
) -> AuditRecord:
    """The record of a report already made (the service's): its canonical JSON is the output,
    in the report's language (a replay evaluates in it again)."""
    from bonecds.report.render import FORMATS

    options = OutputOptions(language=report.language)
    output = FORMATS[options.format](report, options.explain)
    return make_record(profile, knowledge, as_of, options, output, report)


# ---- the service's audit database (_database.py) ----

_CREATE = (
    "CREATE TABLE IF NOT EXISTS audit (recorded_at TEXT NOT NULL, service_id TEXT NOT NULL,"
    " record TEXT NOT NULL)"
)
_INSERT = "INSERT INTO audit (recorded_at, service_id, record) VALUES ({marks})"
_SELECT = "SELECT service_id, record FROM audit ORDER BY recorded_at"


class AuditStore:
    """Audit records of the service's responses, one row each; a connection per call keeps it
    safe under the service's thread pool."""

    def __init__(self, target: str | Path) -> None:
        self.database = Database(str(target))
        self.database.create("audit", _CREATE)

    def add(self, service_id: str, record: AuditRecord) -> None:
        recorded = dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")
        statement = _INSERT.format(marks=", ".join([self.database.mark] * 3))
        with self.database.transaction() as db:
            db.execute(statement, (recorded, service_id, record_json(record)))

    def records(self) -> list[tuple[str, AuditRecord]]:
        """(service id, record) of every stored response, oldest first."""
        with self.database.transaction() as db:
            rows = db.execute(_SELECT).fetchall()
        return [
            (service, parse_record(json.loads(text), "audit database")) for service, text in rows
        ]
