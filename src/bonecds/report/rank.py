"""Firings -> the Report: emergencies first, options by score, the rest beside them.

Ordering is fixed by the catalogue (§0.2): emergencies before options, then score (highest
first), ties broken by option id. An option any rule contraindicates leaves the ranked list and
is shown apart with every reason. An option whose deciding data are missing stays ranked and
lists the fields it is conditional on; each such field also appears as a data request.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from bonecds.engine.facts import Facts
from bonecds.engine.firing import Firing
from bonecds.knowledge.i18n import Texts, show_value
from bonecds.knowledge.model import (
    Adjust,
    Branch,
    Caution,
    Context,
    Contraindicate,
    Dose,
    KnowledgeBase,
    Note,
    Propose,
    Request,
    Rule,
    Schedule,
)
from bonecds.profile.fields import FIELDS

__all__ = ["rank"]

# The report is built as plain JSON-ready data, key for key the Report model of report/model.py
# (api.evaluate validates it into one; batch writes it as it is). Building a pydantic model per
# item and dumping them again cost more than the matching (RESULTS.md); tests check that
# every report validates and serialises back to the same bytes.
Data = dict[str, Any]


@dataclass
class _Hit:
    """One firing with everything the report needs to show about it."""

    rule: Rule
    branch: Branch
    missing: list[str]
    values: list[Data]
    citations: list[Data]
    rationales: dict[tuple[str, str, bool], str] = field(default_factory=dict)  # by _rationale
    parts: dict[str, list[tuple[Any, ...]]] = field(default_factory=dict)  # by language
    cited: dict[str, list[Data]] = field(default_factory=dict)  # citations, by language


@dataclass
class _Option:
    id: str
    kind: str = "option"
    score: int = -1
    purpose: str = ""
    strength: str = ""
    evidence: list[str] = field(default_factory=list)
    rationale: list[str] = field(default_factory=list)
    rules: list[str] = field(default_factory=list)
    citations: list[Data] = field(default_factory=list)
    values: list[Data] = field(default_factory=list)
    conditional: list[str] = field(default_factory=list)
    dose: Data | None = None
    dose_adjusted: bool = False
    schedule: Data | None = None
    score_note: str = ""


@dataclass
class _Collected:
    options: dict[str, _Option] = field(default_factory=dict)
    contraindicated: dict[str, list[Data]] = field(default_factory=dict)
    cautions: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: dict[str, dict[str, Any]] = field(default_factory=dict)
    context: dict[str, Data] = field(default_factory=dict)
    notes: list[Data] = field(default_factory=list)
    adjustments: list[tuple[Adjust, _Hit]] = field(default_factory=list)
    texts: Texts | None = None

    @property
    def words(self) -> Texts:
        assert self.texts is not None
        return self.texts


def rank(
    firings: list[Firing],
    knowledge: KnowledgeBase,
    facts: Facts,
    *,
    as_of: str,
    patient_id: str | None,
    engine_version: str,
    language: str = "en",
) -> Data:
    """Build the report's data from what fired, its texts in `language` (en or zh)."""
    collected = _Collected(texts=Texts(knowledge, language))
    hits = _hits(firings, knowledge, facts)
    for hit in hits:
        for part in _parts(hit, collected.words):
            _collect(collected, part, hit)
        _request_missing(collected, hit)
    for adjust, hit in collected.adjustments:
        _apply_adjustment(collected, adjust, hit)
    return {
        "disclaimer": collected.words.disclaimer,
        "language": language,
        "as_of": as_of,
        "knowledge_version": knowledge.version,
        "engine_version": engine_version,
        "patient_id": patient_id,
        "ranked": _ranked(collected, knowledge),
        "contraindicated": _contraindicated(collected),
        "cautions": _cautions(collected),
        "data_requests": _requests(collected),
        "context": [collected.context[key] for key in sorted(collected.context)],
        "notes": collected.notes,
        "derived": [dict(vars(item)) for item in facts.derived],
        "rules_fired": [
            {"rule": hit.rule.id, "branch": hit.branch.name, "conditional_on": list(hit.missing)}
            for hit in hits
        ],
    }


def _hits(firings: list[Firing], knowledge: KnowledgeBase, facts: Facts) -> list[_Hit]:
    """One hit per rule branch. It is conditional only if every way it fired assumed a
    needed value unknown; then it is conditional on the values the leanest ways assumed."""
    known = facts.values
    grouped: dict[tuple[int, int], list[tuple[str, ...]]] = {}
    for firing in firings:
        assumed = firing.assumes
        if firing.tolerant:
            assumed = (*assumed, *(f for f in firing.tolerant if f not in known))
        ways = grouped.get(firing.order)
        if ways is None:
            grouped[firing.order] = [assumed]
        else:
            ways.append(assumed)
    memo = knowledge.report_memo
    reads = knowledge.branch_reads
    hits = []
    for order in sorted(grouped):
        ways = grouped[order]
        missing = ways[0] if len(ways) == 1 else _leanest(ways)
        values = [known.get(name) for name in reads[order]]
        key = (order, missing, *map(_typed, values))
        hit = memo.get(key)
        if hit is None:
            hit = _remember(memo, key, _hit(order, missing, values, knowledge))
        hits.append(hit)
    return hits


# A hit made for one patient serves every later patient whose same rule branch fired on the
# same values with the same values missing: 94% of firings in a seeded cohort of 19,000
# (RESULTS.md). The memo only saves work, it never changes a report; it is bounded, the
# oldest hit going first, so that a cohort of continuous values cannot grow it without end.
MEMO_SIZE = 2048
_memo_lock = threading.Lock()  # the service ranks on several threads


def _remember(memo: dict[Any, _Hit], key: Any, hit: _Hit) -> _Hit:
    with _memo_lock:
        while memo and len(memo) >= MEMO_SIZE:
            del memo[next(iter(memo))]
        if MEMO_SIZE > 0:
            memo[key] = hit
    return hit


def _typed(value: Any) -> Any:
    """A value as a memo key: typed, since True, 1 and 1.0 are equal but shown differently."""
    if isinstance(value, list):
        return (list, *map(_typed, value))
    return (value.__class__, value)


def _leanest(ways: list[tuple[str, ...]]) -> tuple[str, ...]:
    """The unknowns assumed by the ways of firing that assume no more than another way that
    fired: a value that another alternative made unnecessary is not asked for."""
    sets = [set(way) for way in ways]
    kept = [way for way, own in zip(ways, sets, strict=True) if not any(o < own for o in sets)]
    return tuple(field for way in kept for field in way)


def _hit(
    order: tuple[int, int], missing: tuple[str, ...], values: list[Any], knowledge: KnowledgeBase
) -> _Hit:
    rule = knowledge.rules[order[0]]
    reads = knowledge.branch_reads[order]
    shown = [_patient_value(name, value) for name, value in zip(reads, values, strict=True)]
    citations = [
        _citation(c.source, knowledge.sources[c.source].title, c.locator) for c in rule.citations
    ]
    paths = list(dict.fromkeys(_input_path(name) for name in missing))
    return _Hit(rule, rule.branches[order[1]], paths, shown, citations)


def _cited(hit: _Hit, texts: Texts) -> list[Data]:
    """The hit's citations with their locators in the report's language (made once per hit
    and language, like its parts)."""
    if texts.language == "en":
        return hit.citations
    cited = hit.cited.get(texts.language)
    if cited is None:
        locators = texts.locators(hit.rule)
        cited = hit.cited[texts.language] = [
            _citation(c["source"], c["title"], locator)
            for c, locator in zip(hit.citations, locators, strict=True)
        ]
    return cited


def _input_path(name: str) -> str:
    spec = FIELDS.get(name)
    return spec.input_path if spec is not None and spec.input_path else name


# Reports share these items, which are never changed once made: most firings show the same
# citations and many the same values.
@functools.lru_cache(maxsize=4096)
def _citation(source: str, title: str, locator: str) -> Data:
    return {"source": source, "title": title, "locator": locator}


def _patient_value(name: str, value: Any) -> Data:
    if isinstance(value, list):  # unhashable: never shared
        return {"field": name, "value": value, "unit": FIELDS[name].unit}
    return _shared_value(name, value)


@functools.lru_cache(maxsize=65536, typed=True)  # typed: True and 1 stay different values
def _shared_value(name: str, value: Any) -> Data:
    return {"field": name, "value": value, "unit": FIELDS[name].unit}


def _parts(hit: _Hit, texts: Texts) -> list[tuple[Any, ...]]:
    """What each effect of the hit adds to the report, its texts in the report's language:
    made once per hit and language, since a hit serves many patients (MEMO_SIZE)."""
    parts = hit.parts.get(texts.language)
    if parts is None:
        parts = hit.parts[texts.language] = [_part(e, hit, texts) for e in hit.branch.effects]
    return parts


def _part(effect: Any, hit: _Hit, texts: Texts) -> tuple[Any, ...]:
    rule, branch = hit.rule, hit.branch.name
    if isinstance(effect, Propose):
        option = effect.propose
        dose = texts.dose(rule, option, effect.dose, branch)
        schedule = texts.schedule(rule, option, effect.schedule, branch)
        rationale = _rationale(texts, hit, texts.option_text(rule, effect, branch))
        return ("propose", effect, rationale, dose, schedule)
    if isinstance(effect, Contraindicate):
        reasons = [
            (option, _reason(texts.reason(rule, effect, option, branch), hit, texts))
            for option in effect.contraindicate
        ]
        return ("contraindicate", reasons)
    if isinstance(effect, Caution):
        return ("caution", effect, texts.caution(rule, effect, branch))
    if isinstance(effect, Request):
        why = [(_input_path(n), texts.request(rule, effect, n, branch)) for n in effect.request]
        return ("request", effect, why)
    if isinstance(effect, Note):
        note = {
            "text": texts.note(rule, effect),
            "applies_to": effect.applies_to,
            "rules": [rule.id],
            "citations": _cited(hit, texts),
        }
        return ("note", note)
    if isinstance(effect, Context):
        context = {
            "id": effect.context,
            "label": texts.context(rule, effect, branch),
            "rationale": _rationale(texts, hit),
            "rules": [rule.id],
            "citations": _cited(hit, texts),
        }
        return ("context", effect.context, context)
    if isinstance(effect, Adjust):
        dose = texts.dose(rule, effect.adjust, effect.dose, branch)
        schedule = texts.schedule(rule, effect.adjust, effect.schedule, branch)
        return ("adjust", effect.model_copy(update={"dose": dose, "schedule": schedule}))
    return ("derive",)  # derived facts matter to the engine only


def _reason(text: str, hit: _Hit, texts: Texts) -> Data:
    return {
        "rule": hit.rule.id,
        "text": text,
        "patient_values": hit.values,
        "citations": _cited(hit, texts),
    }


def _collect(collected: _Collected, part: tuple[Any, ...], hit: _Hit) -> None:
    kind = part[0]
    if kind == "propose":
        _propose(collected, part[1], part[2], hit, part[3], part[4])
    elif kind == "contraindicate":
        for option, reason in part[1]:
            collected.contraindicated.setdefault(option, []).append(reason)
    elif kind == "caution":
        _caution(collected, part[1], part[2], hit)
    elif kind == "request":
        effect = part[1]
        for path, why in part[2]:
            _add_request(collected, path, why, effect.gates, hit, effect.urgent)
    elif kind == "note":
        collected.notes.append(part[1])
    elif kind == "context":
        collected.context[part[1]] = part[2]
    elif kind == "adjust":
        collected.adjustments.append((part[1], hit))


def _propose(
    collected: _Collected,
    effect: Propose,
    rationale: str,
    hit: _Hit,
    dose: Dose | None,
    schedule: Schedule | None,
) -> None:
    option = collected.options.setdefault(effect.propose, _Option(effect.propose))
    if effect.kind == "emergency":
        option.kind = "emergency"
    if effect.score > option.score:
        option.score, option.purpose, option.strength = (
            effect.score,
            effect.purpose,
            effect.strength,
        )
    option.evidence.append(hit.rule.evidence)
    option.rationale.append(rationale)
    option.rules.append(hit.rule.id)
    option.citations.extend(_cited(hit, collected.words))
    option.values.extend(hit.values)
    option.conditional.extend(hit.missing)
    if dose is not None and option.dose is None:
        option.dose = _with_rules(dose, hit)
    if schedule is not None and option.schedule is None:
        option.schedule = _with_rules(schedule, hit)


def _with_rules(item: Dose | Schedule, hit: _Hit) -> Data:
    """A rule's dose or schedule as shown: its fields and the rule that set it."""
    return {**_fields(item), "rules": [hit.rule.id]}


@functools.lru_cache(maxsize=1024)
def _fields(item: Dose | Schedule) -> Data:
    return item.model_dump()


def _caution(collected: _Collected, effect: Caution, text: str, hit: _Hit) -> None:
    entry = collected.cautions.setdefault(
        effect.caution,
        {"texts": [], "applies_to": [], "rules": [], "citations": [], "values": []},
    )
    entry["texts"].append(text)
    entry["applies_to"].extend(effect.applies_to)
    entry["rules"].append(hit.rule.id)
    entry["citations"].extend(_cited(hit, collected.words))
    entry["values"].extend(hit.values)


def _add_request(
    collected: _Collected,
    name: str,
    reason: str,
    gates: Iterable[str],
    hit: _Hit,
    urgent: bool = False,
) -> None:
    entry = collected.requests.setdefault(
        name, {"reasons": [], "gates": [], "rules": [], "urgent": False}
    )
    entry["reasons"].append(reason)
    entry["gates"].extend(gates)
    entry["rules"].append(hit.rule.id)
    entry["urgent"] = entry["urgent"] or urgent


def _request_missing(collected: _Collected, hit: _Hit) -> None:
    """A rule that fired without a value it needs asks for it, naming what it gates."""
    if not hit.missing:
        return
    gates = [e.propose for e in hit.branch.effects if isinstance(e, Propose)]
    for name in hit.missing:
        reason = f"{collected.words.words['needed']}: {collected.words.title(hit.rule)}"
        _add_request(collected, name, reason, gates, hit)


def _apply_adjustment(collected: _Collected, adjust: Adjust, hit: _Hit) -> None:
    option = collected.options.get(adjust.adjust)
    if option is None:
        return
    if adjust.score is not None and (not option.score_note or adjust.score < option.score):
        option.score = adjust.score
        reason = collected.words.adjustment(hit.rule, adjust.adjust, adjust.reason, hit.branch.name)
        option.score_note = f"{adjust.score} ({hit.rule.id}): {reason}"
    if adjust.dose is not None:
        option.dose = _adjusted_dose(option, _with_rules(adjust.dose, hit), collected.words)
    if adjust.schedule is not None:
        option.schedule = _with_rules(adjust.schedule, hit)
    # An adjusting branch of the rule that proposed the option adds its reason, not the
    # rule's rationale a second time.
    repeat = hit.rule.id in option.rules
    option.rules.append(hit.rule.id)
    reason = collected.words.adjustment(hit.rule, adjust.adjust, adjust.reason, hit.branch.name)
    option.rationale.append(_rationale(collected.words, hit, reason, rule_text=not repeat))
    option.citations.extend(_cited(hit, collected.words))
    option.values.extend(hit.values)
    option.conditional.extend(hit.missing)


def _adjusted_dose(option: _Option, new: Data, texts: Texts) -> Data:
    """Two rules adjusting one dose differently is a knowledge-base conflict: show the lower
    amount, name both rules, and say so, rather than letting rule order decide silently."""
    current = option.dose if option.dose_adjusted else None
    option.dose_adjusted = True
    if current is None:
        return new
    rules = [*current["rules"], *new["rules"]]
    if current["amount"] == new["amount"]:
        return {**current, "rules": rules}
    low, high = sorted((current, new), key=lambda d: (d["amount"] is None, d["amount"] or 0.0))
    conflict = texts.words["conflict"]
    text = conflict.format(text=low["text"], amount=high["amount"], unit=high["unit"])
    return {**low, "text": text, "rules": sorted(set(rules))}


def _rationale(texts: Texts, hit: _Hit, lead: str = "", *, rule_text: bool = True) -> str:
    key = (texts.language, lead, rule_text)
    text = hit.rationales.get(key)
    if text is None:
        text = hit.rationales[key] = _rationale_text(texts, hit, lead, rule_text)
    return text


def _rationale_text(texts: Texts, hit: _Hit, lead: str, rule_text: bool) -> str:
    known = [
        f"{v['field']} = {show_value(v['value'], v['unit'], texts.words)}"
        for v in hit.values
        if v["value"] is not None
    ]
    unknown = [v["field"] for v in hit.values if v["value"] is None]
    lead = lead.strip()
    stop = texts.words["stop"]
    if lead and not lead.endswith((".", "!", "?", "。")):
        lead += stop
    parts = [lead, texts.rationale(hit.rule) if rule_text else ""]
    words = texts.words
    if known:
        parts.append(f"{words['patient']}{words['colon']}{words['semicolon'].join(known)}{stop}")
    if unknown:
        parts.append(f"{words['unknown']}{words['colon']}{words['comma'].join(unknown)}{stop}")
    return " ".join(part for part in parts if part)


def _ranked(collected: _Collected, knowledge: KnowledgeBase) -> list[Data]:
    kept = [o for o in collected.options.values() if o.id not in collected.contraindicated]
    for option in kept:
        if knowledge.vocabulary[option.id].kind == "emergency":
            option.kind = "emergency"
    kept.sort(key=lambda o: (o.kind != "emergency", -o.score, o.id))
    cautions = collected.cautions
    items = []
    for rank_number, option in enumerate(kept, start=1):
        conditional = set(option.conditional)
        for name, request in collected.requests.items():
            if option.id in request["gates"]:
                conditional.add(name)
        items.append(
            {
                "id": option.id,
                "label": collected.words.label(option.id),
                "kind": option.kind,
                "rank": rank_number,
                "score": option.score,
                "purpose": option.purpose,
                "strength": option.strength,
                "evidence": "; ".join(_unique(option.evidence)),
                "rationale": " ".join(_unique(option.rationale)),
                "rules": _unique(option.rules),
                "citations": _unique_citations(option.citations),
                "cautions": sorted(c for c, e in cautions.items() if option.id in e["applies_to"]),
                "conditional_on": sorted(conditional),
                "dose": option.dose,
                "schedule": option.schedule,
                "patient_values": _unique_values(option.values),
                "score_note": option.score_note,
            }
        )
    return items


def _contraindicated(collected: _Collected) -> list[Data]:
    return [
        {"id": option, "label": collected.words.label(option), "reasons": reasons}
        for option, reasons in sorted(collected.contraindicated.items())
    ]


def _cautions(collected: _Collected) -> list[Data]:
    shown = {*collected.options, *collected.contraindicated, "patient"}
    return [
        {
            "id": caution_id,
            "text": " ".join(_unique(entry["texts"])),
            "applies_to": _present(entry["applies_to"], shown),
            "rules": _unique(entry["rules"]),
            "citations": _unique_citations(entry["citations"]),
            "patient_values": _unique_values(entry["values"]),
        }
        for caution_id, entry in sorted(collected.cautions.items())
    ]


def _present(targets: list[str], shown: set[str]) -> list[str]:
    """The caution's targets that this report shows (an option may be named by a rule that
    covers several schedules of one drug); all of them if none is shown."""
    kept = sorted({target for target in targets if target in shown})
    return kept or sorted(set(targets))


def _requests(collected: _Collected) -> list[Data]:
    items = [
        {
            "field": name,
            "reason": " ".join(_unique(entry["reasons"])),
            "gates": sorted(set(entry["gates"])),
            "rules": _unique(entry["rules"]),
            "urgent": entry["urgent"],
        }
        for name, entry in collected.requests.items()
    ]
    return sorted(items, key=lambda item: (not item["urgent"], item["field"]))


def _unique(items: Iterable[str]) -> list[str]:
    return [item for item in dict.fromkeys(items) if item]


def _unique_citations(items: Iterable[Data]) -> list[Data]:
    return list({(c["source"], c["locator"]): c for c in items}.values())


def _unique_values(items: Iterable[Data]) -> list[Data]:
    return list({v["field"]: v for v in items}.values())
