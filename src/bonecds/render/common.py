"""Small wording helpers shared by the human-readable renderers."""

from __future__ import annotations

from typing import Any

from bonecds.i18n import heading
from bonecds.report import CitationOut, PatientValue, RankedItem


def show_value(value: Any, unit: str = "") -> str:
    if value is None:
        return "unknown"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(str(item) for item in value) or "none"
    return f"{value} {unit}".strip()


def values_line(values: list[PatientValue]) -> str:
    return "; ".join(f"{v.field} = {show_value(v.value, v.unit)}" for v in values)


def citations_line(citations: list[CitationOut]) -> str:
    return "; ".join(f"{c.source}" + (f" ({c.locator})" if c.locator else "") for c in citations)


def status_of(item: RankedItem, language: str = "en") -> str:
    if item.conditional_on:
        return f"{heading(language, 'conditional')} " + ", ".join(item.conditional_on)
    return heading(language, "decided")


def dose_line(item: RankedItem) -> str:
    parts = []
    if item.dose is not None:
        parts.append(item.dose.text)
    if item.schedule is not None:
        parts.append(item.schedule.text)
    return "; ".join(parts)
