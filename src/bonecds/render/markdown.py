"""Markdown for notes, tickets and EHR prototypes that display Markdown."""

from __future__ import annotations

from bonecds.i18n import heading
from bonecds.render.common import citations_line, dose_line, show_value, status_of, values_line
from bonecds.report import Report


def render_markdown(report: Report, explain: bool = False) -> str:
    lines = [
        f"# bonecds report{f' - {report.patient_id}' if report.patient_id else ''}",
        "",
        f"> **{report.disclaimer}**",
        "",
        f"As of {report.as_of}; knowledge {report.knowledge_version}; {report.engine_version}.",
        "",
        f"## {heading(report.language, 'ranked')}",
        "",
        "| # | option | score | status | dose / schedule | cautions | rules |",
        "|---|---|---|---|---|---|---|",
    ]
    for item in report.ranked:
        kind = "**EMERGENCY** " if item.kind == "emergency" else ""
        lines.append(
            f"| {item.rank} | {kind}{_cell(item.label)} (`{item.id}`) | {item.score} | "
            f"{_cell(status_of(item, report.language))} | {_cell(dose_line(item))} | "
            f"{', '.join(item.cautions)} | "
            f"{', '.join(item.rules)} |"
        )
    lines += _section(
        heading(report.language, "contraindicated"),
        [
            f"- **{c.label}** (`{c.id}`): {r.text} _({r.rule}; {values_line(r.patient_values)}; "
            f"{citations_line(r.citations)})_"
            for c in report.contraindicated
            for r in c.reasons
        ],
    )
    lines += _section(
        heading(report.language, "cautions"),
        [
            f"- **{c.id}** (applies to {', '.join(c.applies_to)}): {c.text} "
            f"_({citations_line(c.citations)})_"
            for c in report.cautions
        ],
    )
    lines += _section(
        heading(report.language, "requests"),
        [
            f"- `{r.field}`{' **(urgent)**' if r.urgent else ''}: {r.reason} "
            f"Decides: {', '.join(r.gates) or '-'}."
            for r in report.data_requests
        ],
    )
    lines += _section(
        heading(report.language, "context"),
        [f"- {c.label} (`{c.id}`): {c.rationale}" for c in report.context],
    )
    lines += _section(heading(report.language, "notes"), [f"- {n.text}" for n in report.notes])
    lines += _section(
        heading(report.language, "derived"),
        [f"- `{d.field}` = {show_value(d.value, d.unit)}: {d.method}" for d in report.derived],
    )
    if explain:
        lines += _section(
            "Rationale",
            [
                f"{i.rank}. **{i.label}**: {i.rationale} Citations: {citations_line(i.citations)}"
                for i in report.ranked
            ],
        )
    return "\n".join(lines).rstrip() + "\n"


def _section(title: str, items: list[str]) -> list[str]:
    return ["", f"## {title}", "", *items] if items else []


def _cell(text: str) -> str:
    return text.replace("|", "\\|")
