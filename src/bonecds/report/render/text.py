"""The clinician's terminal view: "what now" on the first screen, the details after it.

Plain characters, no colour codes, wrapped to the given width at spaces only (an id is never
split), so the same report and width give the same bytes everywhere.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.cells import cell_len

from bonecds.report.model import RankedItem, Report, WhyNot
from bonecds.report.render._common import (
    caution_cites,
    citations_line,
    condition_line,
    dose_line,
    explanations_in_order,
    key_caution,
    known_values,
    show_value,
    sources_of,
    status_of,
    values_line,
)
from bonecds.report.render._words import method_words, targets_words, words
from bonecds.report.render.layout import PIPE_WIDTH, wrap

__all__ = ["render_text", "render_why_not"]


class _Page:
    """Lines of a fixed width."""

    def __init__(self, width: int) -> None:
        self.width = width
        self.lines: list[str] = []

    def say(self, text: str, first: str = "", rest: str | None = None) -> None:
        self.lines.extend(wrap(text, self.width, first, rest))

    def heading(self, title: str, rule: str = "-") -> None:
        if self.lines and self.lines[-1]:
            self.lines.append("")
        self.lines += [title, rule * min(cell_len(title), self.width)]

    def item(self, head: str, *details: str) -> None:
        """A bullet with its details indented under it."""
        self.say(head, "- ")
        for detail in details:
            if detail:
                self.say(detail, "  ")

    def text(self) -> str:
        return "\n".join(self.lines).rstrip() + "\n"


def render_text(report: Report, explain: bool = False, width: int = PIPE_WIDTH) -> str:
    """Render for a terminal `width` cells wide."""
    page = _Page(width)
    _header(page, report)
    _what_now(page, report)
    _details(page, report)
    if explain:
        _explanations(page, report)
    return page.text()


def _header(page: _Page, report: Report) -> None:
    w = words(report.language)
    patient = f"{w['patient']} {report.patient_id}" if report.patient_id else w["unnamed"]
    page.say(f"{w['report']} - {patient} - {w['as_of']} {report.as_of}")
    page.say(f"{w['knowledge']} {report.knowledge_version}; {report.engine_version}")
    page.say(report.disclaimer, f"{w['notice']}: ")


def _what_now(page: _Page, report: Report) -> None:
    w = words(report.language)
    page.heading(w["what_now"], "=")
    emergencies = [i for i in report.ranked if i.kind == "emergency"]
    options = [i for i in report.ranked if i.kind != "emergency"]
    page.say(f"{w['emergencies']}:" + ("" if emergencies else f" {w['no_emergency']}"))
    for item in emergencies:
        _option_summary(page, report, item)
    page.say(f"{w['options']}:" + ("" if options else f" {w['no_option']}"))
    for item in options:
        _option_summary(page, report, item)
    if report.contraindicated:
        ids = ", ".join(c.id for c in report.contraindicated)
        page.say(ids, f"{w['contraindicated_short']}: ")
    page.say(f"{w['missing']}:" + ("" if report.data_requests else f" {w['no_missing']}"))
    for request in report.data_requests:
        field = f"{request.field} ({w['urgent']})" if request.urgent else request.field
        page.say(f"{field}: {w['decides']} {', '.join(request.gates) or '-'}", "  - ")


def _option_summary(page: _Page, report: Report, item: RankedItem) -> None:
    w = words(report.language)
    emergency = f"{w['emergency']}: " if item.kind == "emergency" else ""
    page.say(f"{emergency}{item.label} [{item.id}]", f"  {item.rank}. ".ljust(6))
    indent = " " * 6
    page.say(f"{status_of(item, report.language)}; {w['score']} {item.score}", indent)
    if dose_line(item):
        page.say(dose_line(item), f"{indent}{w['dose']}: ")
    caution, others = key_caution(item, report)
    if caution is not None:
        more = f" (+{len(others)} {w['more']}: {', '.join(others)})" if others else ""
        page.say(f"{caution.id}{more}", f"{indent}{w['caution']}: ")


def _details(page: _Page, report: Report) -> None:
    w = words(report.language)
    lang = report.language
    page.heading(w["details"], "=")
    page.heading(w["ranked"])
    for item in report.ranked:
        score = f"{w['score']} {item.score}" + (f" ({item.score_note})" if item.score_note else "")
        page.item(
            f"{item.rank}. {item.label} [{item.id}]",
            score,
            f"{w['rules']}: {', '.join(item.rules)}",
            f"{w['cites']}: {citations_line(item.citations)}",
        )
    if report.contraindicated:
        page.heading(w["contraindicated"])
    for option in report.contraindicated:
        for reason in option.reasons:
            page.item(
                f"{option.label} [{option.id}]: {reason.text}",
                f"{w['rules']}: {reason.rule}",
                f"{w['patient_values']}: {values_line(reason.patient_values, lang)}",
                f"{w['cites']}: {citations_line(reason.citations)}",
            )
    _cautions(page, report)
    _requests(page, report)
    _context_and_notes(page, report)
    _derived(page, report)
    _sources(page, report)


def _section(page: _Page, title: str, items: Sequence[tuple[str, ...]]) -> None:
    """A heading and its bullets; nothing at all when there are none."""
    if items:
        page.heading(title)
    for item in items:
        page.item(*item)


def _cautions(page: _Page, report: Report) -> None:
    w = words(report.language)
    cites = caution_cites(report, citations_line)
    items = []
    for caution in report.cautions:
        applies = targets_words(caution.applies_to, report.language)
        items.append(
            (
                f"{caution.id} ({w['applies_to']} {applies}): {caution.text}",
                f"{w['rules']}: {', '.join(caution.rules)}",
                f"{w['cites']}: {cites[caution.id]}",
            )
        )
    _section(page, w["cautions"], items)


def _requests(page: _Page, report: Report) -> None:
    w = words(report.language)
    urgent = f" ({w['urgent']})"
    items = [
        (
            f"{r.field}{urgent if r.urgent else ''}: {r.reason}",
            f"{w['decides']}: {', '.join(r.gates) or '-'}",
            f"{w['rules']}: {', '.join(r.rules)}",
        )
        for r in report.data_requests
    ]
    _section(page, w["requests"], items)


def _context_and_notes(page: _Page, report: Report) -> None:
    w = words(report.language)
    _section(page, w["context"], [(f"{c.label} [{c.id}]: {c.rationale}",) for c in report.context])
    notes = [(n.text, f"{w['rules']}: {', '.join(n.rules)}") for n in report.notes]
    _section(page, w["notes"], notes)


def _derived(page: _Page, report: Report) -> None:
    w = words(report.language)
    lang = report.language
    if report.derived:
        page.heading(w["derived"])
    for value in report.derived:
        inputs = "; ".join(f"{k} = {show_value(v, '', lang)}" for k, v in value.inputs.items())
        page.item(
            f"{value.field} = {show_value(value.value, value.unit, lang)}",
            f"{w['method']}: {method_words(value.method, lang)}",
            f"{w['inputs']}: {inputs}" if inputs else "",
        )


def _sources(page: _Page, report: Report) -> None:
    sources = sources_of(report)
    if sources:
        page.heading(words(report.language)["sources"])
    for source in sources:
        page.say(source.title, f"{source.source}: ".ljust(6))


def _explanations(page: _Page, report: Report) -> None:
    w = words(report.language)
    page.heading(w["rationale"])
    for item in report.ranked:
        page.item(f"{item.rank}. {item.label} [{item.id}]", item.rationale)
    page.heading(w["why_fired"])
    known = known_values(report)
    for explanation in explanations_in_order(report):
        branch = f" / {explanation.branch}" if explanation.branch else ""
        page.say(f"{explanation.rule}{branch}: {explanation.title}")
        for line in explanation.conditions:
            indent = "   " * (line.depth + 1)
            page.say(condition_line(line, known, report.language), indent, indent + "    ")


def render_why_not(answer: WhyNot, language: str = "en") -> str:
    """Why an option was or was not proposed, rule by rule and condition by condition."""
    w = words(language)
    outcome = w["outcome_" + answer.outcome.replace(" ", "_")]
    lines = [f"{answer.label} [{answer.option}]: {outcome}"]
    for reason in answer.reasons:
        lines.append(f"  {w['contraindicated_by']} {reason.rule}: {reason.text}")
    if not answer.candidates:
        lines.append(f"  {w['no_rule']}")
    for candidate in answer.candidates:
        branch = f" / {candidate.branch}" if candidate.branch else ""
        status = w[candidate.status]
        lines.append(f"  {candidate.rule}{branch} ({status}): {candidate.title}")
        for line in candidate.conditions:
            lines.append(f"{'    ' * (line.depth + 1)}  {condition_line(line, {}, language)}")
    return "\n".join(lines) + "\n"
