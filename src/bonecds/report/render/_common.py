"""What the human-readable renderers (text, Markdown, HTML) say, decided once for all three."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from bonecds.knowledge.i18n import show_value as shown
from bonecds.report.model import (
    CautionOut,
    CitationOut,
    ConditionLine,
    PatientValue,
    RankedItem,
    Report,
    RuleExplanation,
)
from bonecds.report.render._words import condition_words, words

__all__ = [
    "caution_cites",
    "citations_line",
    "condition_line",
    "dose_line",
    "explanations_in_order",
    "key_caution",
    "known_values",
    "show_value",
    "sources_of",
    "status_of",
    "values_line",
]

# A comparison whose right-hand side is another field: "a.b <= c.d", "x > y.z mL/min".
_FIELD_LIMIT = re.compile(r"^\S+ (?:<=|>=|<|>|==|!=) ([a-z_]+\.[a-z0-9_.]+)\b")


def show_value(value: Any, unit: str = "", language: str = "en") -> str:
    return shown(value, unit, words(language))


def values_line(values: list[PatientValue], language: str = "en") -> str:
    return "; ".join(f"{v.field} = {show_value(v.value, v.unit, language)}" for v in values)


def citations_line(citations: list[CitationOut]) -> str:
    """Bibliography keys with where to look; the Sources list names each key's work."""
    return "; ".join(c.source + (f" ({c.locator})" if c.locator else "") for c in citations)


def sources_of(report: Report) -> list[CitationOut]:
    """Every work the report cites, once, in order of first citation (locator left out)."""
    groups = [
        *(i.citations for i in report.ranked),
        *(r.citations for c in report.contraindicated for r in c.reasons),
        *(c.citations for c in report.cautions),
        *(c.citations for c in report.context),
        *(n.citations for n in report.notes),
    ]
    seen: dict[str, CitationOut] = {}
    for citation in (c for group in groups for c in group):
        seen.setdefault(citation.source, CitationOut(source=citation.source, title=citation.title))
    return list(seen.values())


def caution_cites(
    report: Report, cite: Callable[[list[CitationOut]], str], plain: Callable[[str], str] = str
) -> dict[str, str]:
    """Per caution id, what the caution cites: its citations as `cite` writes them, or "same
    sources as <id>" (through `plain`, the format's escaping) when a caution shown before it
    cites the very same, as the cautions of one rule do, so the list is not repeated."""
    same_sources = words(report.language)["same_sources"]
    first: dict[tuple[tuple[str, str], ...], str] = {}
    cites: dict[str, str] = {}
    for caution in report.cautions:
        key = tuple((c.source, c.locator) for c in caution.citations)
        if key and key in first:
            cites[caution.id] = plain(f"{same_sources} {first[key]}")
        else:
            cites[caution.id] = cite(caution.citations)
        first.setdefault(key, caution.id)
    return cites


def status_of(item: RankedItem, language: str = "en") -> str:
    """ "Conditional on" the missing fields, or that nothing is pending: never a word that
    reads as a decision already taken (that is the clinician's)."""
    w = words(language)
    if item.conditional_on:
        return f"{w['conditional']} " + ", ".join(item.conditional_on)
    return w["complete"]


def dose_line(item: RankedItem) -> str:
    """Dose, then the schedule unless the dose text already says it."""
    parts = []
    if item.dose is not None:
        parts.append(item.dose.text)
    if item.schedule is not None and item.schedule.text.lower() not in " ".join(parts).lower():
        parts.append(item.schedule.text)
    return "; ".join(parts)


def key_caution(item: RankedItem, report: Report) -> tuple[CautionOut | None, list[str]]:
    """The caution most specific to the option (applying to the fewest options; report order
    breaks ties), and the ids of its other cautions."""
    cautions = [c for c in report.cautions if c.id in item.cautions]
    if not cautions:
        return None, []
    chosen = min(cautions, key=lambda c: len(c.applies_to))
    return chosen, [c.id for c in cautions if c is not chosen]


def known_values(report: Report) -> dict[str, str]:
    """Every value the report shows, by field path: what a limit in a condition resolves to."""
    known: dict[str, str] = {}
    groups = [
        *(i.patient_values for i in report.ranked),
        *(r.patient_values for c in report.contraindicated for r in c.reasons),
        *(c.patient_values for c in report.cautions),
    ]
    for value in (v for group in groups for v in group):
        known.setdefault(value.field, show_value(value.value, value.unit, report.language))
    for derived in report.derived:
        known[derived.field] = show_value(derived.value, derived.unit, report.language)
    return known


def condition_line(line: ConditionLine, known: dict[str, str], language: str = "en") -> str:
    """One traced condition: its status, its text, the patient's value and, when the condition
    compares with another field (a limit), that field's value too."""
    w = words(language)
    shown = []
    if line.value is not None:
        shown.append(f"{w['patient_value']}: {show_value(line.value, '', language)}")
    limit = _FIELD_LIMIT.match(line.text)
    if limit and limit.group(1) in known:
        shown.append(f"{limit.group(1)}: {known[limit.group(1)]}")
    values = f" ({'; '.join(shown)})" if shown else ""
    return f"[{w[line.status]}] {condition_words(line.text, language)}{values}"


def explanations_in_order(report: Report) -> list[RuleExplanation]:
    """Each fired rule branch once, by rule id then branch."""
    unique = {(e.rule, e.branch): e for e in report.explanations or []}
    return [unique[key] for key in sorted(unique)]
