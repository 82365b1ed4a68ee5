"""Report -> CDS Hooks cards: the patient-view overview and the order checks of draft orders.

Rendering is a pure function of the report and the hook instance, so the same request gives the
same bytes, card uuids included (C-3). Kept apart from the models (`_models.py`): the models say
what a valid card is, this module what bonecds puts on one.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from typing import Any, Literal

from bonecds.cds_hooks._models import (
    SUMMARY_LIMIT,
    Action,
    Card,
    CdsResponse,
    Coding,
    Prefetched,
    Source,
    Suggestion,
)
from bonecds.fhir.orders import DraftOrder
from bonecds.report.model import CitationOut, PatientValue, Report

__all__ = ["CardContext", "order_cards", "patient_view_cards", "state_notes"]

CARD_NAMESPACE = uuid.UUID("6f1f3c52-8f0e-5b9e-9d7a-0b0c3d5e6a71")  # fixed: uuids are uuid5
OVERRIDE_SYSTEM = "http://terminology.hl7.org/CodeSystem/non-adherence-reason-codes"

_REASONS = {
    "patient-contraindication": "Patient has contraindication to recommended action",
    "action-completed": "Recommended action was already completed",
    "patient-refuses": "Patient refuses/declines (no context given)",
    "recipient-disagrees-evidence": "Recipient disagrees with recommendation because of issues "
    "with the evidence",
    "risk-benefit-ratio": "Recipient assessment of risk/benefit ratio",
}
_CARD_REASONS = {  # checklist C-10, terminology.md §9
    "critical": ("action-completed", "recipient-disagrees-evidence", "risk-benefit-ratio"),
    "warning": ("risk-benefit-ratio", "recipient-disagrees-evidence", "action-completed"),
    "info": (
        "action-completed",
        "patient-contraindication",
        "patient-refuses",
        "recipient-disagrees-evidence",
    ),
}
# Each agent's options, by the least dosing interval (weeks) an order must have to be that
# option: zoledronic acid ordered every 8 weeks or more is the de-escalated 12-weekly schedule
# (rule D13), between the 4-weekly standard and the 12-weekly option; an order with no interval
# is the standard one.
AGENT_OPTIONS: dict[str, tuple[tuple[str, float], ...]] = {
    "zoledronic_acid": (("zoledronic-acid", 0.0), ("zoledronic-acid-12-weekly", 8.0)),
    "denosumab": (("denosumab", 0.0),),
    "pamidronate": (("pamidronate", 0.0),),
    "ibandronate": (("ibandronate", 0.0),),
}
AGENT_LABELS = {
    "zoledronic_acid": "Zoledronic acid",
    "denosumab": "Denosumab",
    "pamidronate": "Pamidronate",
    "ibandronate": "Ibandronic acid",
}


@dataclass
class CardContext:
    """What the cards need besides the report: identity, source and the data behind them."""

    hook_instance: str
    source: Source
    dates: dict[str, str] = field(default_factory=dict)
    data_notes: list[str] = field(default_factory=list)


def patient_view_cards(report: Report, ctx: CardContext) -> CdsResponse:
    """Bone-health overview: emergencies, contraindications, cautions, options, missing data."""
    cards = _emergencies(report, ctx)
    cards += [_contraindication(item, None, ctx) for item in report.contraindicated]
    cards += [_caution(item, ctx) for item in report.cautions]
    cards += _options(report, ctx) + _requests(report.data_requests, None, ctx)
    return CdsResponse(cards=[*cards, *_data_card(ctx)])


def order_cards(report: Report, orders: list[DraftOrder], ctx: CardContext) -> CdsResponse:
    """Checks for each drafted bone-modifying agent, all taken from the patient's report."""
    cards = _emergencies(report, ctx)
    for order in orders:
        options = _order_options(order)
        found = [c for c in report.contraindicated if c.id in options]
        cards += [_contraindication(item, order, ctx) for item in found]
        cards += _dose_check(report, order, ctx)
        cards += [_caution(c, ctx, order) for c in report.cautions if options & set(c.applies_to)]
        cards += _requests([r for r in report.data_requests if options & set(r.gates)], order, ctx)
        if not found and not any(item.id in options for item in report.ranked):
            cards.append(_unchecked(order, ctx))
    return CdsResponse(cards=[*cards, *_data_card(ctx)] if orders else [])


def _order_options(order: DraftOrder) -> set[str]:
    """The one option a draft order is: its agent's, at the order's dosing interval."""
    interval = order.interval_weeks or 0.0
    return {[option for option, least in AGENT_OPTIONS[order.agent] if interval >= least][-1]}


def _emergencies(report: Report, ctx: CardContext) -> list[Card]:
    emergencies = [item for item in report.ranked if item.kind == "emergency"]
    return [
        _card(ctx, f"emergency|{e.id}", "critical", f"Emergency: {e.label}", [e.rationale], e)
        for e in emergencies
    ]


def _contraindication(item: Any, order: DraftOrder | None, ctx: CardContext) -> Card:
    reasons = item.reasons
    evidence = _Evidence(
        [v for r in reasons for v in r.patient_values],
        [r.rule for r in reasons],
        [c for r in reasons for c in r.citations],
    )
    head = f"{AGENT_LABELS[order.agent]} order" if order else item.label
    body = [f"{r.text} (rule `{r.rule}`)" for r in reasons]
    key = f"contra|{item.id}|{order.reference if order else ''}"
    card = _card(ctx, key, "warning", f"{head}: {reasons[0].text}", body, evidence)
    if order is None or order.reference.endswith("]"):
        return card  # no id: a delete action could not name the order
    action = Action(type="delete", description="Remove the draft order", resourceId=order.reference)
    return _suggest(card, ctx, f"Remove this {AGENT_LABELS[order.agent].lower()} order", action)


def _dose_check(report: Report, order: DraftOrder, ctx: CardContext) -> list[Card]:
    # The renally adjusted dose comes from the report (rule D4); only the comparison is here.
    item = next((i for i in report.ranked if i.id == AGENT_OPTIONS[order.agent][0][0]), None)
    dose = item.dose if item is not None else None
    if item is None or dose is None or dose.amount is None or order.dose_mg is None:
        return []
    if abs(dose.amount - order.dose_mg) < 1e-9 or dose.unit != "mg":
        return []
    summary = f"{AGENT_LABELS[order.agent]} {order.dose_mg:g} mg ordered; {dose.text}"
    body = [f"Ordered: {order.dose_mg:g} mg. Recommended: {dose.text}.", item.rationale]
    evidence = _Evidence(item.patient_values, dose.rules, item.citations)
    card = _card(ctx, f"dose|{order.reference}", "warning", summary, body, evidence)
    updated = _with_dose(order, dose.amount)
    if updated is None or order.reference.endswith("]") or order.problems:
        return [card]
    action = Action(
        type="update", description=f"Set the dose to {dose.amount:g} mg", resource=updated
    )
    return [_suggest(card, ctx, f"Change the dose to {dose.amount:g} mg", action)]


def _with_dose(order: DraftOrder, amount: float) -> dict[str, Any] | None:
    resource: dict[str, Any] = _copy(order.resource)
    try:
        quantity = resource["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"]
    except (KeyError, IndexError, TypeError):
        return None
    quantity.update(value=amount, unit="mg", system="http://unitsofmeasure.org", code="mg")
    return resource


def _caution(item: Any, ctx: CardContext, order: DraftOrder | None = None) -> Card:
    head = f"{AGENT_LABELS[order.agent]} order: " if order else _topic(item.applies_to)
    key = f"caution|{item.id}|{order.reference if order else ''}"
    return _card(ctx, key, "warning", head + item.text, [item.text], item)


def _topic(applies_to: list[str]) -> str:
    """A summary prefix naming what a caution is about, so its first sentence stands alone."""
    options = [option for option in applies_to if option != "patient"]
    bma = {option for options in AGENT_OPTIONS.values() for option, _ in options}
    if len(options) == 1:
        return options[0].replace("-", " ").capitalize() + ": "
    if options and set(options) <= bma:
        return "Bone-modifying agents: "
    return ""


def _options(report: Report, ctx: CardContext) -> list[Card]:
    options = [item for item in report.ranked if item.kind == "option"]
    if not options:
        return []
    lines = []
    for item in options:
        dose = f" Dose: {item.dose.text}." if item.dose else ""
        when = f" Conditional on: {', '.join(item.conditional_on)}." if item.conditional_on else ""
        lines.append(
            f"{item.rank}. **{_md(item.label)}** ({_md(item.strength)}). "
            f"{_md(item.rationale)}{_md(dose)}{when}"
        )
    lines += [f"- Context: **{_md(c.label)}**: {_md(c.rationale)}" for c in report.context]
    lines += [f"- Note: {_md(n.text)}" for n in report.notes]
    names = ", ".join(item.label for item in options)
    evidence = _Evidence(
        [v for item in options for v in item.patient_values],
        [r for item in options for r in item.rules],
        [c for item in options for c in item.citations],
    )
    summary = f"Bone-health options, best first: {names}"
    return [_card(ctx, "options", "info", summary, lines, evidence, escaped=True)]


def _requests(requests: list[Any], order: DraftOrder | None, ctx: CardContext) -> list[Card]:
    if not requests:
        return []
    urgent = order is not None or any(r.urgent for r in requests)
    head = f"Before signing {AGENT_LABELS[order.agent].lower()}" if order else "Missing data"
    fields = ", ".join(r.field for r in requests)
    lines = [f"`{r.field}`: {r.reason} (decides: {', '.join(r.gates)})" for r in requests]
    key = f"requests|{order.reference if order else ''}"
    evidence = _Evidence(rules=[rule for r in requests for rule in r.rules])
    return [_card(ctx, key, "warning" if urgent else "info", f"{head}: {fields}", lines, evidence)]


def _unchecked(order: DraftOrder, ctx: CardContext) -> Card:
    name = AGENT_LABELS[order.agent]
    text = (
        f"bonecds proposes no {name.lower()} for this patient from the recorded data (no "
        "bone-metastasis or other indication found), so its safety checks did not run. Check "
        "the indication and the missing-data card."
    )
    summary = f"{name} order not checked: no indication found in the record"
    return _card(ctx, f"unchecked|{order.reference}", "info", summary, [text])


def _data_card(ctx: CardContext) -> list[Card]:
    if not ctx.data_notes:
        return []
    summary = "Data bonecds used and could not use for this patient"
    return [_card(ctx, "data", "info", summary, ctx.data_notes)]


@dataclass(frozen=True)
class _Evidence:
    """What a card cites: the shape shared by ranked items and cautions."""

    patient_values: list[PatientValue] = field(default_factory=list)
    rules: list[str] = field(default_factory=list)
    citations: list[CitationOut] = field(default_factory=list)


def _card(
    ctx: CardContext,
    key: str,
    indicator: Literal["info", "warning", "critical"],
    summary: str,
    body: list[str],
    evidence: Any = _Evidence(),
    *,
    escaped: bool = False,
) -> Card:
    """One card: the text, then values, rules and sources, then the notice (checklist C-9)."""
    sections = [line if escaped else _md(line) for line in body if line]
    if evidence.patient_values:
        values = "\n".join(_value(v, ctx) for v in evidence.patient_values)
        sections.append(f"**Patient values used**\n\n{values}")
    if evidence.rules:
        sections.append("**Rules**: " + ", ".join(f"`{r}`" for r in dict.fromkeys(evidence.rules)))
    if evidence.citations:
        cited = dict.fromkeys(_citation(c) for c in evidence.citations)
        sections.append("**Sources**\n\n" + "\n".join(cited))
    sections.append("_bonecds is a research prototype, not a medical device: check every card._")
    reasons = [
        Coding(system=OVERRIDE_SYSTEM, code=code, display=_REASONS[code])
        for code in _CARD_REASONS[indicator]
    ]
    return Card(
        uuid=_uuid(ctx, key),
        summary=_summary(summary),
        detail="\n\n".join(sections),
        indicator=indicator,
        source=ctx.source,
        overrideReasons=reasons,
    )


def _citation(citation: CitationOut) -> str:
    locator = f" ({_md(citation.locator)})" if citation.locator else ""
    return f"- {_md(citation.title)}{locator}"


def _value(value: PatientValue, ctx: CardContext) -> str:
    shown = "unknown" if value.value is None else value.value
    shown = {True: "yes", False: "no"}.get(shown, shown) if isinstance(shown, bool) else shown
    shown = ", ".join(map(str, shown)) if isinstance(shown, list) else shown
    date = next((d for f, d in ctx.dates.items() if value.field.startswith(f)), "")
    on = f" (data of {date[:10]})" if date else ""
    return f"- `{value.field}`: {_md(str(shown))} {_md(value.unit)}".rstrip() + on


def _suggest(card: Card, ctx: CardContext, label: str, action: Action) -> Card:
    """The card with one recommended suggestion (C-6: selectionBehavior comes with it)."""
    suggestion = Suggestion(
        label=label,
        uuid=_uuid(ctx, f"{card.uuid}|{action.type}"),
        isRecommended=True,
        actions=[action],
    )
    return card.model_copy(update={"suggestions": [suggestion], "selectionBehavior": "at-most-one"})


def _summary(text: str) -> str:
    """One sentence under 140 characters, cut at a word with an ellipsis when longer."""
    text = re.split(r"(?<=\.)\s", " ".join(text.split()), maxsplit=1)[0]
    if len(text) < SUMMARY_LIMIT:
        return text
    cut = text[: SUMMARY_LIMIT - 2].rsplit(" ", 1)[0].rstrip(",;:-")
    return cut + "…"


def _md(text: str) -> str:
    # No raw HTML in detail (checklist C-4): entity-escape what a Markdown renderer would keep.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _uuid(ctx: CardContext, key: str) -> str:
    return str(uuid.uuid5(CARD_NAMESPACE, f"{ctx.hook_instance}|{key}"))


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    return [_copy(v) for v in value] if isinstance(value, list) else value


def state_notes(states: dict[str, Prefetched], notes: list[str]) -> list[str]:
    """The data card's lines: every prefetch key's state, then the mapping remarks."""
    lines = [states[key].describe(key) for key in sorted(states)]
    return lines + [f"Mapping: {note}" for note in notes]
