"""Markdown for notes, tickets and EHR prototypes that display Markdown: "what now" first."""

from __future__ import annotations

from bonecds.report.model import RankedItem, Report
from bonecds.report.render._common import (
    caution_cites,
    citations_line,
    dose_line,
    key_caution,
    show_value,
    sources_of,
    status_of,
    values_line,
)
from bonecds.report.render._words import method_words, targets_words, words

__all__ = ["render_markdown"]


def render_markdown(report: Report, explain: bool = False) -> str:
    w = words(report.language)
    patient = f" - {report.patient_id}" if report.patient_id else ""
    lines = [
        f"# {w['report']}{patient}",
        "",
        f"> **{report.disclaimer}**",
        "",
        f"{w['as_of']} {report.as_of}; {w['knowledge']} {report.knowledge_version}; "
        f"{report.engine_version}.",
        "",
        f"## {w['what_now']}",
        "",
        *_what_now(report),
    ]
    lines += _section(
        w["contraindicated"],
        [
            f"- **{_md(c.label)}** (`{c.id}`): {_md(r.text)} _({r.rule}; "
            f"{_md(values_line(r.patient_values, report.language))}; "
            f"{_md(citations_line(r.citations))})_"
            for c in report.contraindicated
            for r in c.reasons
        ],
    )
    lines += _cautions(report)
    lines += _section(
        w["requests"],
        [
            f"- `{r.field}`{_urgent(report, r.urgent)}: {_md(r.reason)} "
            f"{w['decides']}: {', '.join(r.gates) or '-'}."
            for r in report.data_requests
        ],
    )
    lines += _section(
        w["context"],
        [f"- {_md(c.label)} (`{c.id}`): {_md(c.rationale)}" for c in report.context],
    )
    lines += _section(w["notes"], [f"- {_md(n.text)}" for n in report.notes])
    lines += _section(
        w["derived"],
        [
            f"- `{d.field}` = {show_value(d.value, d.unit, report.language)}: "
            f"{_md(method_words(d.method, report.language))}"
            + (
                f" ({w['inputs']}: "
                + "; ".join(
                    f"{k} = {show_value(v, '', report.language)}" for k, v in d.inputs.items()
                )
                + ")"
                if d.inputs
                else ""
            )
            for d in report.derived
        ],
    )
    lines += _section(
        w["sources"], [f"- **{s.source}**: {_md(s.title)}" for s in sources_of(report)]
    )
    if explain:
        lines += _section(
            w["rationale"],
            [
                f"{i.rank}. **{_md(i.label)}**: {_md(i.rationale)} "
                f"{w['cites']}: {_md(citations_line(i.citations))}"
                for i in report.ranked
            ],
        )
    return "\n".join(lines).rstrip() + "\n"


def _what_now(report: Report) -> list[str]:
    w = words(report.language)
    lines = [
        "| # | " + " | ".join(w[k] for k in ("option", "status", "dose", "caution")) + " |",
        "|---|---|---|---|---|",
    ]
    lines += [_option_row(report, item) for item in report.ranked]
    if not report.ranked:
        lines = [f"{w['no_option']}."]
    if report.contraindicated:
        ids = ", ".join(f"`{c.id}`" for c in report.contraindicated)
        lines += ["", f"**{w['contraindicated_short']}:** {ids}"]
    requests = [
        f"- `{r.field}`{_urgent(report, r.urgent)}: {w['decides']} {', '.join(r.gates) or '-'}"
        for r in report.data_requests
    ]
    lines += ["", f"**{w['missing']}:**", "", *requests] if requests else []
    return lines


def _option_row(report: Report, item: RankedItem) -> str:
    w = words(report.language)
    emergency = f"**{w['emergency']}** " if item.kind == "emergency" else ""
    caution, others = key_caution(item, report)
    shown = f"`{caution.id}`" if caution else ""
    if others:
        shown += f" (+{len(others)} {w['more']})"
    cells = [
        str(item.rank),
        f"{emergency}{_md(item.label)} (`{item.id}`)",
        _md(status_of(item, report.language)),
        _md(dose_line(item)),
        shown,
    ]
    return "| " + " | ".join(cells) + " |"


def _cautions(report: Report) -> list[str]:
    w = words(report.language)
    cites = caution_cites(report, lambda citations: _md(citations_line(citations)))
    return _section(
        w["cautions"],
        [
            f"- **{c.id}** ({w['applies_to']} {targets_words(c.applies_to, report.language)}): "
            f"{_md(c.text)} _({cites[c.id]})_"
            for c in report.cautions
        ],
    )


def _section(title: str, items: list[str]) -> list[str]:
    return ["", f"## {title}", "", *items] if items else []


def _md(text: str) -> str:
    """Report text inside Markdown: escape what would become markup or break a table cell."""
    for char in "\\|*_`[]<>":
        text = text.replace(char, "\\" + char)
    return text


def _urgent(report: Report, urgent: bool) -> str:
    return f" **({words(report.language)['urgent']})**" if urgent else ""
