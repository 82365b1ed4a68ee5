"""One self-contained HTML page a clinician opens or prints.

Inline CSS, no script, no network: the page reads the same offline and on paper. Every text is
escaped (patient identifiers and rule texts are untrusted here). Besides the options it carries
the basis for reviewing them independently (the patient data read, the logic in plain words,
the sources), as the FDA's guidance on non-device clinical decision support asks (criterion 4).
"""

from __future__ import annotations

from collections.abc import Mapping
from html import escape

from bonecds.report.model import CitationOut, RankedItem, Report
from bonecds.report.render._common import (
    caution_cites,
    condition_line,
    dose_line,
    explanations_in_order,
    known_values,
    show_value,
    sources_of,
    status_of,
    values_line,
)
from bonecds.report.render._words import method_words, targets_words, words

__all__ = ["render_html"]

_CSS = """
*{box-sizing:border-box}
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Noto Sans","Noto Sans CJK SC",
sans-serif;margin:0 auto;padding:12px;max-width:60rem;color:#111;background:#fff;
overflow-wrap:break-word}
h1{font-size:1.35rem;margin:.2rem 0}h2{font-size:1.15rem;margin:1.4rem 0 .5rem;
border-bottom:2px solid #444}h3{font-size:1rem;margin:0}
.notice{border:2px solid #a15c00;background:#fff4e0;padding:.5rem .7rem;font-weight:600}
.meta{color:#444;font-size:.9rem}
.card{border:1px solid #999;border-radius:4px;padding:.5rem .7rem;margin:.5rem 0;
page-break-inside:avoid}
.emergency{border:3px solid #b00020;background:#fff0f0}
.contra{border-color:#555;background:#f3f3f3}
.badge{display:inline-block;border-radius:3px;padding:0 .35rem;font-size:.8rem;
font-weight:700;margin-right:.3rem;border:1px solid}
.b-emergency{color:#fff;background:#b00020;border-color:#b00020}
.b-conditional{color:#7a4b00;background:#fff4e0;border-color:#a15c00}
.b-complete{color:#1f3b57;background:#eef3f8;border-color:#1f3b57}
.b-contra{color:#fff;background:#555;border-color:#555}
.b-urgent{color:#fff;background:#b00020;border-color:#b00020}
ul,ol{padding-left:1.2rem;margin:.3rem 0}li{margin:.15rem 0}
.summary li{margin:.3rem 0}
code{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.9em}
table{border-collapse:collapse;width:100%;table-layout:fixed}
td,th{border:1px solid #bbb;padding:.2rem .4rem;text-align:left;vertical-align:top}
.small{font-size:.88rem;color:#333}
.cond{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.82rem;margin:0;
white-space:pre-wrap}
a{color:#0645ad}
@media print{body{max-width:none;font-size:11pt}a{color:#000}
a[href^="http"]::after{content:" <" attr(href) ">";font-size:.8em;word-break:break-all}}
"""


def render_html(
    report: Report, explain: bool = False, links: Mapping[str, str] | None = None
) -> str:
    """The page; `links` maps a source key to its URL (sources without one are named only).
    `explain` is accepted like every renderer's; the page shows whatever trace the report has."""
    w = words(report.language)
    links = links or {}
    patient = f"{w['patient']} {report.patient_id}" if report.patient_id else w["unnamed"]
    body = [
        f"<h1>{_e(w['report'])} - {_e(patient)}</h1>",
        f'<p class="meta">{_e(w["as_of"])} {_e(report.as_of)}; {_e(w["knowledge"])} '
        f"{_e(report.knowledge_version)}; {_e(report.engine_version)}</p>",
        f'<p class="notice" role="note">{_e(w["notice"])}: {_e(report.disclaimer)}</p>',
        *_what_now(report),
        *_ranked(report, links),
        *_contraindicated(report, links),
        *_requests(report),
        *_cautions_context_notes(report, links),
        *_derived(report),
        *_basis(report, links),
    ]
    lang = "zh-Hans" if report.language == "zh" else "en"
    return (
        f'<!DOCTYPE html>\n<html lang="{lang}">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{_e(w['report'])} - {_e(patient)}</title>\n<style>{_CSS}</style>\n"
        "</head>\n<body>\n" + "\n".join(body) + "\n</body>\n</html>\n"
    )


def _e(text: object) -> str:
    return escape(str(text), quote=True)


def _what_now(report: Report) -> list[str]:
    """The first screen: each option with its status, then what is contraindicated and what
    data would decide the conditional ones; the cards below give the details."""
    w = words(report.language)
    out = [f"<h2>{_e(w['what_now'])}</h2>", '<ol class="summary">']
    for item in report.ranked:
        out.append(
            f'<li><a href="#option-{_e(item.id)}">{_e(item.label)}</a> '
            f"{''.join(_badges(report, item))}</li>"
        )
    out.append("</ol>")
    if not report.ranked:
        out.append(f"<p>{_e(w['no_option'])}</p>")
    if report.contraindicated:
        ids = ", ".join(
            f'<a href="#contra-{_e(c.id)}">{_e(c.label)}</a>' for c in report.contraindicated
        )
        out.append(f"<p><b>{_e(w['contraindicated_short'])}:</b> {ids}</p>")
    if report.data_requests:
        out.append(f"<p><b>{_e(w['missing'])}:</b></p><ul>")
        out += [
            f"<li><code>{_e(r.field)}</code>{_urgent(report, r.urgent)}: {_e(w['decides'])} "
            f"{_e(', '.join(r.gates) or '-')}</li>"
            for r in report.data_requests
        ]
        out.append("</ul>")
    return out


def _badges(report: Report, item: RankedItem) -> list[str]:
    w = words(report.language)
    badges = []
    if item.kind == "emergency":
        badges.append(f'<span class="badge b-emergency">{_e(w["emergency"])}</span>')
    status = _e(status_of(item, report.language))
    kind = "b-conditional" if item.conditional_on else "b-complete"
    badges.append(f'<span class="badge {kind}">{status}</span>')
    return badges


def _urgent(report: Report, urgent: bool) -> str:
    label = _e(words(report.language)["urgent"])
    return f' <span class="badge b-urgent">{label}</span>' if urgent else ""


def _ranked(report: Report, links: Mapping[str, str]) -> list[str]:
    w = words(report.language)
    out = [f"<h2>{_e(w['ranked'])}</h2>"]
    if not report.ranked:
        out.append(f"<p>{_e(w['no_option'])}</p>")
    return out + [_option_card(report, item, links) for item in report.ranked]


def _option_card(report: Report, item: RankedItem, links: Mapping[str, str]) -> str:
    w = words(report.language)
    emergency = item.kind == "emergency"
    badges = _badges(report, item)
    parts = [
        f'<section class="card{" emergency" if emergency else ""}" id="option-{_e(item.id)}">',
        f"<h3>{item.rank}. {_e(item.label)} <code>[{_e(item.id)}]</code></h3>",
        f"<p>{''.join(badges)} {_e(w['score'])} {item.score}"
        + (f" ({_e(item.score_note)})" if item.score_note else "")
        + "</p>",
    ]
    if dose_line(item):
        parts.append(f"<p><b>{_e(w['dose'])}:</b> {_e(dose_line(item))}</p>")
    cautions = [c for c in report.cautions if c.id in item.cautions]
    if cautions:
        parts.append(f"<p><b>{_e(w['cautions'])}:</b></p><ul>")
        parts += [f"<li><code>{_e(c.id)}</code>: {_e(c.text)}</li>" for c in cautions]
        parts.append("</ul>")
    parts.append(f'<p class="small"><b>{_e(w["rationale"])}:</b> {_e(item.rationale)}</p>')
    parts.append(
        f'<p class="small"><b>{_e(w["cites"])}:</b> {_citations(item.citations, links)}</p>'
    )
    parts.append("</section>")
    return "\n".join(parts)


def _contraindicated(report: Report, links: Mapping[str, str]) -> list[str]:
    w = words(report.language)
    if not report.contraindicated:
        return []
    out = [f"<h2>{_e(w['contraindicated'])}</h2>"]
    for option in report.contraindicated:
        out.append(f'<section class="card contra" id="contra-{_e(option.id)}">')
        out.append(
            f'<h3><span class="badge b-contra">{_e(w["contra_badge"])}</span>'
            f"{_e(option.label)} <code>[{_e(option.id)}]</code></h3><ul>"
        )
        out += [
            f'<li>{_e(r.text)}<br><span class="small">{_e(w["rules"])}: {_e(r.rule)}; '
            f"{_e(w['patient_values'])}: {_e(values_line(r.patient_values, report.language))}; "
            f"{_e(w['cites'])}: {_citations(r.citations, links)}</span></li>"
            for r in option.reasons
        ]
        out.append("</ul></section>")
    return out


def _section(title: str, items: list[str]) -> list[str]:
    """A heading and its list; nothing at all when the list is empty."""
    return [f"<h2>{_e(title)}</h2>", "<ul>", *items, "</ul>"] if items else []


def _requests(report: Report) -> list[str]:
    w = words(report.language)
    items = [
        f"<li><code>{_e(r.field)}</code>{_urgent(report, r.urgent)}: {_e(r.reason)} "
        f"<b>{_e(w['decides'])}:</b> {_e(', '.join(r.gates) or '-')}</li>"
        for r in report.data_requests
    ]
    return _section(w["requests"], items)


def _cautions_context_notes(report: Report, links: Mapping[str, str]) -> list[str]:
    w = words(report.language)
    cites = caution_cites(report, lambda citations: _citations(citations, links), _e)
    cautions = [
        f"<li><code>{_e(c.id)}</code> ({_e(w['applies_to'])} "
        f"{_e(targets_words(c.applies_to, report.language))}): {_e(c.text)} "
        f'<span class="small">{_e(w["cites"])}: {cites[c.id]}</span></li>'
        for c in report.cautions
    ]
    context = [
        f"<li>{_e(c.label)} <code>[{_e(c.id)}]</code>: {_e(c.rationale)}</li>"
        for c in report.context
    ]
    notes = [
        f'<li>{_e(n.text)} <span class="small">{_citations(n.citations, links)}</span></li>'
        for n in report.notes
    ]
    return [
        *_section(w["cautions"], cautions),
        *_section(w["context"], context),
        *_section(w["notes"], notes),
    ]


def _derived(report: Report) -> list[str]:
    w = words(report.language)
    lang = report.language
    if not report.derived:
        return []
    out = [f"<h2>{_e(w['derived'])}</h2>", "<ul>"]
    for d in report.derived:
        inputs = "; ".join(f"{k} = {show_value(v, '', lang)}" for k, v in d.inputs.items())
        out.append(
            f"<li><code>{_e(d.field)}</code> = <b>{_e(show_value(d.value, d.unit, lang))}</b><br>"
            f'<span class="small">{_e(w["method"])}: {_e(method_words(d.method, lang))}'
            + (f"; {_e(w['inputs'])}: {_e(inputs)}" if inputs else "")
            + "</span></li>"
        )
    return [*out, "</ul>"]


def _basis(report: Report, links: Mapping[str, str]) -> list[str]:
    """Inputs, logic and sources: the trace is there when the report carries explanations
    (`evaluate -f html` always asks for them)."""
    w = words(report.language)
    out = [f"<h2>{_e(w['basis'])}</h2>", f"<p>{_e(w['basis_text'])}</p>"]
    values = known_values(report)
    if values:
        out += [f"<h3>{_e(w['inputs_used'])}</h3>", "<table>"]
        out += [
            f"<tr><td><code>{_e(field)}</code></td><td>{_e(value)}</td></tr>"
            for field, value in sorted(values.items())
        ]
        out.append("</table>")
    if report.explanations:
        out.append(f"<h3>{_e(w['logic'])}</h3>")
        for explanation in explanations_in_order(report):
            branch = f" / {explanation.branch}" if explanation.branch else ""
            lines = [
                "   " * line.depth + condition_line(line, values, report.language)
                for line in explanation.conditions
            ]
            out.append(
                f"<p><code>{_e(explanation.rule + branch)}</code>: {_e(explanation.title)}</p>"
                f'<pre class="cond">{_e(chr(10).join(lines))}</pre>'
            )
    sources = sources_of(report)
    if sources:
        out += [f"<h3>{_e(w['sources'])}</h3>", "<ul>"]
        out += [f"<li>{_source(s, links)}</li>" for s in sources]
        out.append("</ul>")
    return out


def _source(source: CitationOut, links: Mapping[str, str]) -> str:
    title = _e(source.title)
    url = links.get(source.source, "")
    if url.startswith(("https://", "http://")):
        title = f'<a href="{_e(url)}">{title}</a>'
    return f'<b id="src-{_e(source.source)}">{_e(source.source)}</b>: {title}'


def _citations(citations: list[CitationOut], links: Mapping[str, str]) -> str:
    """Each citation links to its entry in the page's source list (and that entry to the work)."""
    return (
        "; ".join(
            f'<a href="#src-{_e(c.source)}">{_e(c.source)}</a>'
            + (f" ({_e(c.locator)})" if c.locator else "")
            for c in citations
        )
        or "-"
    )
