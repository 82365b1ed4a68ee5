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
from bonecds.cds_hooks._words import AGENT_NAMES, STATES, WORDS
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


@dataclass
class CardContext:
    """What the cards need besides the report: identity, source, the data behind them, and
    the language of the report (the cards' frame is written in it too)."""

    hook_instance: str
    source: Source
    dates: dict[str, str] = field(default_factory=dict)
    data_notes: list[str] = field(default_factory=list)
    language: str = "en"

    def say(self, key: str, **slots: Any) -> str:
        return WORDS[self.language][key].format(**slots)

    def agent(self, order: DraftOrder) -> str:
        return AGENT_NAMES[self.language][order.agent]


def patient_view_cards(report: Report, ctx: CardContext) -> CdsResponse:
    """Bone-health overview: emergencies, contraindications, cautions, options, missing data."""
    cards = _emergencies(report, ctx)
    cards += [_contraindication(item, None, ctx) for item in report.contraindicated]
    labels = {item.id: item.label for item in report.ranked}
    labels |= {item.id: item.label for item in report.contraindicated}
    cards += [_caution(item, ctx, labels=labels) for item in report.cautions]
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
        _card(
            ctx,
            f"emergency|{e.id}",
            "critical",
            ctx.say("emergency", label=e.label),
            [e.rationale],
            e,
        )
        for e in emergencies
    ]


def _contraindication(item: Any, order: DraftOrder | None, ctx: CardContext) -> Card:
    reasons = item.reasons
    evidence = _Evidence(
        [v for r in reasons for v in r.patient_values],
        [r.rule for r in reasons],
        [c for r in reasons for c in r.citations],
    )
    head = ctx.say("order", agent=ctx.agent(order)) if order else item.label
    body = [ctx.say("rule", text=r.text, rule=r.rule) for r in reasons]
    key = f"contra|{item.id}|{order.reference if order else ''}"
    summary = ctx.say("head", head=head, text=reasons[0].text)
    card = _card(ctx, key, "warning", summary, body, evidence)
    if order is None or order.reference.endswith("]"):
        return card  # no id: a delete action could not name the order
    action = Action(type="delete", description=ctx.say("remove_action"), resourceId=order.reference)
    return _suggest(card, ctx, ctx.say("remove", agent_lower=ctx.agent(order).lower()), action)


def _dose_check(report: Report, order: DraftOrder, ctx: CardContext) -> list[Card]:
    # The renally adjusted dose comes from the report (rule D4); only the comparison is here.
    item = next((i for i in report.ranked if i.id == AGENT_OPTIONS[order.agent][0][0]), None)
    dose = item.dose if item is not None else None
    if item is None or dose is None or dose.amount is None or order.dose_mg is None:
        return []
    if abs(dose.amount - order.dose_mg) < 1e-9 or dose.unit != "mg":
        return []
    ordered = f"{order.dose_mg:g}"
    summary = ctx.say("dose_summary", agent=ctx.agent(order), ordered=ordered, dose=dose.text)
    body = [ctx.say("dose_body", ordered=ordered, dose=dose.text), item.rationale]
    evidence = _Evidence(item.patient_values, dose.rules, item.citations)
    card = _card(ctx, f"dose|{order.reference}", "warning", summary, body, evidence)
    updated = _with_dose(order, dose.amount)
    if updated is None or order.reference.endswith("]") or order.problems:
        return [card]
    amount = f"{dose.amount:g}"
    action = Action(
        type="update", description=ctx.say("dose_action", amount=amount), resource=updated
    )
    return [_suggest(card, ctx, ctx.say("dose_label", amount=amount), action)]


def _with_dose(order: DraftOrder, amount: float) -> dict[str, Any] | None:
    resource: dict[str, Any] = _copy(order.resource)
    try:
        quantity = resource["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"]
    except (KeyError, IndexError, TypeError):
        return None
    quantity.update(value=amount, unit="mg", system="http://unitsofmeasure.org", code="mg")
    return resource


def _caution(
    item: Any,
    ctx: CardContext,
    order: DraftOrder | None = None,
    labels: dict[str, str] | None = None,
) -> Card:
    topic = (
        ctx.say("order", agent=ctx.agent(order))
        if order
        else _topic(item.applies_to, ctx, labels or {})
    )
    head = topic + ctx.say("colon") if topic else ""
    key = f"caution|{item.id}|{order.reference if order else ''}"
    return _card(ctx, key, "warning", head + item.text, [item.text], item)


def _topic(applies_to: list[str], ctx: CardContext, labels: dict[str, str]) -> str:
    """What a caution is about, for its summary to stand alone: its one option (in English the
    id as words, elsewhere the report's label), or the bone-modifying agents together."""
    options = [option for option in applies_to if option != "patient"]
    bma = {option for options in AGENT_OPTIONS.values() for option, _ in options}
    if len(options) == 1:
        if ctx.language == "en":
            return options[0].replace("-", " ").capitalize()
        return labels.get(options[0], options[0])
    if options and set(options) <= bma:
        return ctx.say("bma")
    return ""


def _options(report: Report, ctx: CardContext) -> list[Card]:
    options = [item for item in report.ranked if item.kind == "option"]
    if not options:
        return []
    lines = []
    for item in options:
        dose = ctx.say("dose", dose=item.dose.text) if item.dose else ""
        fields = ", ".join(item.conditional_on)
        when = ctx.say("conditional", fields=fields) if item.conditional_on else ""
        lines.append(
            ctx.say(
                "option_line",
                rank=item.rank,
                label=_md(item.label),
                strength=_md(item.strength),
                rationale=_md(item.rationale),
                dose=_md(dose),
                conditional=when,
            )
        )
    lines += [
        ctx.say("context_line", label=_md(c.label), rationale=_md(c.rationale))
        for c in report.context
    ]
    lines += [ctx.say("note_line", text=_md(n.text)) for n in report.notes]
    names = ctx.say("list").join(item.label for item in options)
    evidence = _Evidence(
        [v for item in options for v in item.patient_values],
        [r for item in options for r in item.rules],
        [c for item in options for c in item.citations],
    )
    summary = ctx.say("options", names=names)
    return [_card(ctx, "options", "info", summary, lines, evidence, escaped=True)]


def _requests(requests: list[Any], order: DraftOrder | None, ctx: CardContext) -> list[Card]:
    if not requests:
        return []
    urgent = order is not None or any(r.urgent for r in requests)
    agent_lower = ctx.agent(order).lower() if order else ""
    head = ctx.say("before_signing", agent_lower=agent_lower) if order else ctx.say("missing")
    fields = ", ".join(r.field for r in requests)
    lines = [
        ctx.say("request_line", field=r.field, reason=r.reason, gates=", ".join(r.gates))
        for r in requests
    ]
    key = f"requests|{order.reference if order else ''}"
    evidence = _Evidence(rules=[rule for r in requests for rule in r.rules])
    summary = ctx.say("head", head=head, text=fields)
    return [_card(ctx, key, "warning" if urgent else "info", summary, lines, evidence)]


def _unchecked(order: DraftOrder, ctx: CardContext) -> Card:
    name = ctx.agent(order)
    text = ctx.say("unchecked_text", agent_lower=name.lower())
    summary = ctx.say("unchecked", agent=name)
    return _card(ctx, f"unchecked|{order.reference}", "info", summary, [text])


def _data_card(ctx: CardContext) -> list[Card]:
    if not ctx.data_notes:
        return []
    return [_card(ctx, "data", "info", ctx.say("data"), ctx.data_notes)]


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
        sections.append(f"{ctx.say('values')}\n\n{values}")
    if evidence.rules:
        rules = ", ".join(f"`{r}`" for r in dict.fromkeys(evidence.rules))
        sections.append(ctx.say("rules") + rules)
    if evidence.citations:
        cited = dict.fromkeys(_citation(c) for c in evidence.citations)
        sections.append(ctx.say("sources") + "\n\n" + "\n".join(cited))
    sections.append(ctx.say("notice"))
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
    shown = ctx.say("unknown") if value.value is None else value.value
    if isinstance(shown, bool):
        shown = ctx.say("yes" if shown else "no")
    if isinstance(shown, list):  # known; an empty list is "none", never a blank
        shown = ", ".join(map(str, shown)) or ctx.say("none")
    date = next((d for f, d in ctx.dates.items() if value.field.startswith(f)), "")
    on = ctx.say("dated", date=date[:10]) if date else ""
    colon = ctx.say("colon")
    return f"- `{value.field}`{colon}{_md(str(shown))} {_md(value.unit)}".rstrip() + on


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
    text = re.split(r"(?<=\.)\s|(?<=。)", " ".join(text.split()), maxsplit=1)[0]
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


def state_notes(states: dict[str, Prefetched], notes: list[str], language: str = "en") -> list[str]:
    """The data card's lines: every prefetch key's state, then the mapping remarks."""
    words = WORDS[language]
    lines = []
    for key in sorted(states):
        state = states[key]
        shown = state.state in ("data", "fetched")
        count = words["resources"].format(count=len(state.resources)) if shown else ""
        lines.append(f"`{key}`{words['colon']}{STATES[language][state.state]}{count}")
    return lines + [words["mapping"].format(note=note) for note in notes]
