"""The clinician's view: rich tables, plain characters, fixed width, disclaimer first."""

from __future__ import annotations

import io

from rich import box
from rich.console import Console
from rich.table import Table

from bonecds.i18n import HEADINGS
from bonecds.render.common import (
    citations_line,
    dose_line,
    show_value,
    status_of,
    values_line,
)
from bonecds.report import Report, WhyNot

WIDTH = 120


def render_text(report: Report, explain: bool = False) -> str:
    """Render for a terminal; no colour codes, so the output is the same everywhere."""
    buffer = io.StringIO()
    console = Console(
        file=buffer,
        width=WIDTH,
        color_system=None,
        force_terminal=False,
        legacy_windows=False,
        soft_wrap=False,
        markup=False,  # rule texts contain brackets such as "000 ref [33]"
        highlight=False,
        emoji=False,
    )
    _header(console, report)
    console.print(_ranked_table(report))
    if report.contraindicated:
        console.print(_contraindicated_table(report))
    if report.cautions:
        console.print(_cautions_table(report))
    if report.data_requests:
        console.print(_requests_table(report))
    _context_and_notes(console, report)
    if report.derived:
        console.print(_derived_table(report))
    if explain:
        _explanations(console, report)
    return buffer.getvalue()


def _words(report: Report) -> dict[str, str]:
    return HEADINGS.get(report.language, HEADINGS["en"])


def _header(console: Console, report: Report) -> None:
    h = _words(report)
    patient = f"{h['patient']} {report.patient_id}" if report.patient_id else h["unnamed"]
    console.print(f"{h['report']} - {patient} - {h['as_of']} {report.as_of}")
    console.print(f"{h['knowledge']} {report.knowledge_version}; {report.engine_version}")
    console.print(f"{h['notice']}: {report.disclaimer}")
    console.print()


def _table(title: str, *columns: str) -> Table:
    table = Table(title=title, title_justify="left", box=box.ASCII, show_lines=True, expand=True)
    for column in columns:
        table.add_column(column, overflow="fold")
    return table


def _ranked_table(report: Report) -> Table:
    table = _table(
        _words(report)["ranked"],
        "#",
        "option",
        "score",
        "status",
        "dose / schedule",
        "cautions",
        "rules",
    )
    for item in report.ranked:
        emergency = f"{_words(report)['emergency']}: " if item.kind == "emergency" else ""
        label = f"{emergency}{item.label} [{item.id}]"
        score = f"{item.score}" + (f" ({item.score_note})" if item.score_note else "")
        table.add_row(
            str(item.rank),
            label,
            score,
            status_of(item, report.language),
            dose_line(item),
            ", ".join(item.cautions),
            ", ".join(item.rules),
        )
    if not report.ranked:
        table.add_row("-", _words(report)["none"], "", "", "", "", "")
    return table


def _contraindicated_table(report: Report) -> Table:
    table = _table(
        _words(report)["contraindicated"],
        "option",
        "reason",
        "rule",
        "patient values",
        "citations",
    )
    for item in report.contraindicated:
        for reason in item.reasons:
            table.add_row(
                f"{item.label} [{item.id}]",
                reason.text,
                reason.rule,
                values_line(reason.patient_values),
                citations_line(reason.citations),
            )
    return table


def _cautions_table(report: Report) -> Table:
    table = _table(
        _words(report)["cautions"], "caution", "applies to", "text", "rules", "citations"
    )
    for item in report.cautions:
        table.add_row(
            item.id,
            ", ".join(item.applies_to),
            item.text,
            ", ".join(item.rules),
            citations_line(item.citations),
        )
    return table


def _requests_table(report: Report) -> Table:
    table = _table(_words(report)["requests"], "field", "why", "decides", "rules")
    for item in report.data_requests:
        field = f"{item.field} ({_words(report)['urgent']})" if item.urgent else item.field
        table.add_row(field, item.reason, ", ".join(item.gates), ", ".join(item.rules))
    return table


def _context_and_notes(console: Console, report: Report) -> None:
    for item in report.context:
        console.print(f"{_words(report)['context']}: {item.label} [{item.id}] - {item.rationale}")
    for note in report.notes:
        console.print(f"{_words(report)['notes']} ({', '.join(note.rules)}): {note.text}")
    if report.context or report.notes:
        console.print()


def _derived_table(report: Report) -> Table:
    table = _table(_words(report)["derived"], "value", "result", "method", "inputs")
    for item in report.derived:
        inputs = "; ".join(f"{k} = {show_value(v)}" for k, v in item.inputs.items()) or "-"
        table.add_row(item.field, show_value(item.value, item.unit), item.method, inputs)
    return table


def _explanations(console: Console, report: Report) -> None:
    console.print("Why each rule fired (conditions with the patient's values):")
    by_rule = {(e.rule, e.branch): e for e in (report.explanations or [])}
    for item in report.ranked:
        console.print(f"\n{item.rank}. {item.label} [{item.id}]")
        console.print(f"   Rationale: {item.rationale}")
        console.print(f"   Citations: {citations_line(item.citations)}")
    console.print()
    for (rule, branch), explanation in sorted(by_rule.items()):
        console.print(f"{rule}{' / ' + branch if branch else ''}: {explanation.title}")
        for line in explanation.conditions:
            value = "" if line.value is None else f" (patient: {show_value(line.value)})"
            console.print(f"{'   ' * (line.depth + 1)}[{line.status}] {line.text}{value}")


def render_why_not(answer: WhyNot) -> str:
    """Why an option was or was not proposed, rule by rule and condition by condition."""
    lines = [f"{answer.label} [{answer.option}]: {answer.outcome}"]
    for reason in answer.reasons:
        lines.append(f"  contraindicated by {reason.rule}: {reason.text}")
    if not answer.candidates:
        lines.append("  no rule proposes this option")
    for candidate in answer.candidates:
        branch = f" / {candidate.branch}" if candidate.branch else ""
        lines.append(f"  {candidate.rule}{branch} ({candidate.status}): {candidate.title}")
        for line in candidate.conditions:
            value = "" if line.value is None else f" (patient: {show_value(line.value)})"
            lines.append(f"{'    ' * (line.depth + 1)}  [{line.status}] {line.text}{value}")
    return "\n".join(lines) + "\n"
