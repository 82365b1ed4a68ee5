"""Rule models -> a durable_rules ruleset definition (plain dicts), ready for durable.py.

Each rule branch becomes one durable rule per alternative join (the condition's disjunctive
normal form over option/derived tests; field tests stay one `$and`/`$or` pattern on the
patient fact). Three facts exist in a session: the patient (`t: p`), facts rules produce
(`t: o` for a proposed option, `t: d` for a derived fact), and phase markers (`t: ph`).

Negation over produced facts is stratified: a rule that tests the *absence* of a fact also
joins the phase marker of its stratum, which the engine asserts only after every lower stratum
has run to completion, so the absence it sees is final (durable_rules does not withdraw an
action once its negated fact appears later).
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bonecds.errors import Diagnostic, RuleError
from bonecds.knowledge import model as km
from bonecds.profile.fields import FIELDS

__all__ = [
    "EXACT_INTEGER",
    "MAX_JOINS_PER_FACT",
    "MAX_OPERATORS_PER_PATTERN",
    "MAX_PATIENT_KEYS",
    "MAX_RULES_PER_RULESET",
    "CompiledRule",
    "Knowledge",
    "compile_rules",
    "engine_number",
    "fact_key",
    "list_key",
    "partition_rules",
    "patient_keys",
]

# durable_rules 2.0.28 limits (docs/durable-rules-notes.md §9): stay well below them. The
# first three hold per durable_rules ruleset, and the engine spreads the compiled rules over as
# many rulesets as keep each within them (partition_rules); the last holds per rule.
MAX_RULES_PER_RULESET = 250  # the engine's sentinel rule included (at 295+ dense rules: 303)
MAX_JOINS_PER_FACT = 200  # rules joining on one fact pattern (256: error 108)
# Patient-fact keys a ruleset's patterns name (each becomes a property of the patient fact; 254
# properties: error 302, and `t` and `sid` are two more).
MAX_PATIENT_KEYS = 240
MAX_OPERATORS_PER_PATTERN = 15


@dataclass(frozen=True)
class Join:
    """A test on a produced fact: an option proposed or a fact derived (or their absence)."""

    kind: str  # "o" (option) or "d" (derived)
    name: str
    purposes: tuple[str, ...] = ()
    negated: bool = False


@dataclass(frozen=True)
class Unknown:
    """A needed field inside an `any`: one alternative assumes it unknown, one tests it."""

    test: km.FieldTest


@dataclass(frozen=True)
class CompiledRule:
    """One durable_rules rule: which rule branch it stands for and what its action asserts.

    `assumes` are needed fields this alternative matched as unknown; `tolerant` are needed
    fields tested in a pure conjunction, which count as assumed when the patient lacks them.
    """

    name: str
    rule_id: str
    branch: str
    order: tuple[int, int]
    pattern: dict[str, Any]
    produces: tuple[dict[str, Any], ...]
    assumes: tuple[str, ...]
    tolerant: tuple[str, ...]


@dataclass(frozen=True)
class Knowledge:
    """A knowledge base ready to evaluate: `base` (the rules as loaded, with sources, vocabulary
    and settings) and `rules` (the same rules compiled for durable_rules)."""

    ruleset_name: str
    rules: tuple[CompiledRule, ...]
    max_stratum: int
    base: km.KnowledgeBase


# durable_rules reads integers with atoll (64 bits) and compares an integer with a double as a
# double: beyond 2**53 an integer is compared as the double nearest to it, on both sides.
EXACT_INTEGER = 2**53


def engine_number(value: Any) -> Any:
    """A value as durable_rules compares it: an integer beyond 2**53 becomes the nearest double
    (the largest double if none is that large, which keeps it above every rule constant), so
    the engine and the floor compare the same numbers. Anything else is returned unchanged."""
    if type(value) is not int or -EXACT_INTEGER <= value <= EXACT_INTEGER:
        return value
    try:
        return float(value)
    except OverflowError:
        return sys.float_info.max if value > 0 else -sys.float_info.max


def fact_key(path: str) -> str:
    """The patient-fact key of a field path (durable_rules reads dots as nesting)."""
    return path.replace(".", "__")


def list_key(path: str, member: str) -> str:
    return f"{fact_key(path)}__has__{member}"


def compile_rules(knowledge: km.KnowledgeBase) -> Knowledge:
    """Compile every active rule; raise RuleError if the set breaks an engine limit."""
    active = [rule for rule in knowledge.rules if rule.active]
    strata = _strata(active)
    compiled: list[CompiledRule] = []
    for rule_index, rule in enumerate(knowledge.rules):
        if not rule.active:
            continue
        for branch_index, branch in enumerate(rule.branches):
            when = rule.condition(branch)
            needs = tuple(dict.fromkeys((*rule.needs, *branch.needs)))
            marked = _mark_unknowns(_nnf(when, False), set(needs), inside_any=False)
            in_any = _unknown_fields(marked)
            tolerant = tuple(name for name in needs if name not in in_any)
            produces = tuple(_produced_fact(effect) for effect in branch.effects)
            for tests, joins, assumes in _alternatives(marked):
                conjuncts = _flatten([_field_expr(test, set(tolerant)) for test in tests])
                for patient in _fit(conjuncts, rule):
                    compiled.append(
                        CompiledRule(
                            name=f"r{len(compiled)}",
                            rule_id=rule.id,
                            branch=branch.name,
                            order=(rule_index, branch_index),
                            pattern=_pattern(patient, joins, strata[rule.id]),
                            produces=tuple(fact for fact in produces if fact),
                            assumes=tuple(dict.fromkeys(assumes)),
                            tolerant=tolerant,
                        )
                    )
    _check_limits(compiled, knowledge)
    digest = hashlib.sha256(
        json.dumps([[c.name, c.pattern] for c in compiled], sort_keys=True).encode()
    ).hexdigest()[:16]
    return Knowledge(
        ruleset_name=f"bonecds_{digest}",
        rules=tuple(compiled),
        max_stratum=max(strata.values(), default=0),
        base=knowledge,
    )


def _produced_fact(effect: Any) -> dict[str, Any]:
    if isinstance(effect, km.Propose):
        return {"t": "o", "n": effect.propose, "purpose": effect.purpose}
    derive = getattr(effect, "derive", None)
    return {"t": "d", "n": derive} if derive else {}


def _nnf(node: km.Condition, negate: bool) -> Any:
    """Push `not` down to the leaves, so that every leaf carries its own polarity."""
    if isinstance(node, km.Not):
        return _nnf(node.item, not negate)
    if isinstance(node, km.All | km.Any_):
        items = tuple(_nnf(item, negate) for item in node.items)
        swap = isinstance(node, km.All) == negate
        return km.Any_(items) if swap else km.All(items)
    if isinstance(node, km.FieldTest):
        if not negate:
            return node
        if node.op == "known":
            return km.FieldTest(node.field, "known", not node.value)
        return km.FieldTest(node.field, km.NEGATED[node.op], node.value)
    if isinstance(node, km.Proposed):
        return Join("o", node.option, node.purposes, negate)
    assert isinstance(node, km.Derived)
    return Join("d", node.name, (), negate)


def _mark_unknowns(node: Any, needs: set[str], inside_any: bool) -> Any:
    """Wrap needed-field tests that sit under an `any`, so each can branch on unknown."""
    if isinstance(node, km.All | km.Any_):
        nested = inside_any or isinstance(node, km.Any_)
        return type(node)(tuple(_mark_unknowns(item, needs, nested) for item in node.items))
    if isinstance(node, km.FieldTest) and inside_any and node.field in needs and node.op != "known":
        return Unknown(node)
    return node


def _unknown_fields(node: Any) -> set[str]:
    if isinstance(node, Unknown):
        return {node.test.field}
    if isinstance(node, km.All | km.Any_):
        return set().union(*(_unknown_fields(item) for item in node.items))
    return set()


def _branches(node: Any) -> bool:
    if isinstance(node, Join | Unknown):
        return True
    return isinstance(node, km.All | km.Any_) and any(_branches(item) for item in node.items)


Alternative = tuple[list[Any], list[Join], list[str]]


def _alternatives(node: Any) -> list[Alternative]:
    """Disjunctive normal form over joins and unknown-able tests; other subtrees stay whole."""
    if not _branches(node):
        return [([node], [], [])]
    if isinstance(node, Join):
        return [([], [node], [])]
    if isinstance(node, Unknown):
        absent = km.FieldTest(node.test.field, "known", False)
        return [([node.test], [], []), ([absent], [], [node.test.field])]
    parts = [_alternatives(item) for item in node.items]
    if isinstance(node, km.Any_):
        return [alt for part in parts for alt in part]
    combined: list[Alternative] = [([], [], [])]
    for part in parts:
        combined = [(t1 + t2, j1 + j2, a1 + a2) for t1, j1, a1 in combined for t2, j2, a2 in part]
    return combined


def _flatten(conjuncts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Lift nested `$and`s into one list: fewer operator nodes for durable_rules to hold."""
    flat: list[dict[str, Any]] = []
    for item in conjuncts:
        flat.extend(_flatten(item["$and"]) if "$and" in item else [item])
    return flat


def _operators(node: Any) -> int:
    if isinstance(node, dict):
        own = 1 if ("$and" in node or "$or" in node) else 0
        return own + sum(_operators(value) for value in node.values())
    if isinstance(node, list):
        return sum(_operators(item) for item in node)
    return 0


def _fit(conjuncts: list[dict[str, Any]], rule: km.Rule) -> list[list[dict[str, Any]]]:
    """Split the first `$or` into alternatives until each pattern fits durable_rules' limit."""
    if 1 + _operators(conjuncts) <= MAX_OPERATORS_PER_PATTERN:
        return [conjuncts]
    for index, item in enumerate(conjuncts):
        if "$or" in item:
            rest = conjuncts[:index] + conjuncts[index + 1 :]
            return [alt for option in item["$or"] for alt in _fit(_flatten([*rest, option]), rule)]
    message = f"condition too complex for the engine (more than {MAX_OPERATORS_PER_PATTERN} and/or)"
    raise RuleError([Diagnostic("engine-limit", message, rule.file, rule.line, 1, rule.id)])


def _pattern(patient: list[dict[str, Any]], joins: list[Join], stratum: int) -> dict[str, Any]:
    patterns: list[dict[str, Any]] = [{"p": {"$and": [{"t": "p"}, *patient]}}]
    positives = [join for join in joins if not join.negated]
    negatives = [join for join in joins if join.negated]
    for index, join in enumerate(positives):
        patterns.append({f"j{index}": _join_expr(join)})
    if negatives:
        patterns.append({"ph": {"$and": [{"t": "ph"}, {"n": stratum}]}})
    for index, join in enumerate(negatives):
        patterns.append({f"x{index}$not": _join_expr(join)})
    return {"all": patterns}


def _join_expr(join: Join) -> dict[str, Any]:
    terms: list[dict[str, Any]] = [{"t": join.kind}, {"n": join.name}]
    if join.purposes:
        terms.append({"$or": [{"purpose": purpose} for purpose in join.purposes]})
    return {"$and": terms}


def _field_expr(node: Any, tolerant: set[str]) -> dict[str, Any]:
    if isinstance(node, km.All | km.Any_):
        key = "$and" if isinstance(node, km.All) else "$or"
        return {key: [_field_expr(item, tolerant) for item in node.items]}
    return _leaf(node, tolerant)


def _leaf(test: km.FieldTest, tolerant: set[str]) -> dict[str, Any]:
    if test.op == "known":
        return {"$ex" if test.value else "$nex": {_presence_key(test.field): 1}}
    expression, present = _comparison(test)
    if test.field in tolerant:
        return {"$or": [expression, *({"$nex": {key: 1}} for key in present)]}
    if isinstance(test.value, km.FieldRef):
        # durable_rules compares a missing referenced field as if it matched: guard both.
        return {"$and": [*({"$ex": {key: 1}} for key in present), expression]}
    # A constant comparison on a missing field never matches in durable_rules (measured, and
    # pinned by tests/engine/test_compile.py), so unknown stays "not met" without a guard.
    return expression


def _presence_key(path: str) -> str:
    # A list is known exactly when its count is.
    return fact_key(f"{path}.count") if FIELDS[path].type.endswith("-list") else fact_key(path)


def _comparison(test: km.FieldTest) -> tuple[dict[str, Any], list[str]]:
    """The durable_rules expression of a leaf, and the keys that must be present for it."""
    key = fact_key(test.field)
    if test.op in ("contains", "not_contains"):
        member_key = list_key(test.field, str(test.value))
        return {member_key: test.op == "contains"}, [_presence_key(test.field)]
    if test.op in ("in", "not_in"):
        values = [engine_number(value) for value in test.value]
        if test.op == "in":
            return {"$or": [{key: value} for value in values]}, [key]
        return {"$and": [{"$neq": {key: value}} for value in values]}, [key]
    value: Any = engine_number(test.value)
    present = [key]
    if isinstance(value, km.FieldRef):
        present.append(fact_key(value.field))
        value = {"$m": fact_key(value.field)}
    if test.op == "eq":
        return {key: value}, present
    return {_OPERATORS[test.op]: {key: value}}, present


_OPERATORS = {"ne": "$neq", "lt": "$lt", "lte": "$lte", "gt": "$gt", "gte": "$gte"}


def _strata(rules: list[km.Rule]) -> dict[str, int]:
    """Stratum of each rule: above the producers of every fact whose absence it tests."""
    producers: dict[tuple[str, str], list[str]] = {}
    for rule in rules:
        for branch in rule.branches:
            for effect in branch.effects:
                fact = _produced_fact(effect)
                if fact:
                    producers.setdefault((fact["t"], fact["n"]), []).append(rule.id)
    deps = {rule.id: _joins_of(rule) for rule in rules}
    strata = {rule.id: 0 for rule in rules}
    changed: list[km.Rule] = []
    for _ in range(len(rules) + 2):
        changed = []
        for rule in rules:
            level = 1 if any(join.negated for join in deps[rule.id]) else 0
            for join in deps[rule.id]:
                for producer in producers.get((join.kind, join.name), []):
                    level = max(level, strata[producer] + (1 if join.negated else 0))
            if level != strata[rule.id]:
                strata[rule.id] = level
                changed.append(rule)
        if not changed:
            return strata
    message = "rule depends on the absence of its own consequences"
    raise RuleError(
        [Diagnostic("negation-cycle", message, r.file, r.line, 1, r.id) for r in changed]
    )


def _joins_of(rule: km.Rule) -> list[Join]:
    joins: list[Join] = []
    for branch in rule.branches:
        when = rule.condition(branch)
        for _, branch_joins, _ in _alternatives(_nnf(when, False)):
            joins.extend(branch_joins)
    return joins


def partition_rules(rules: Sequence[CompiledRule]) -> tuple[tuple[int, ...], ...]:
    """The indexes of the rules of each durable_rules ruleset: consecutive runs of the compiled
    rules, each as long as the per-ruleset limits allow. Facts produced in one ruleset are
    asserted into every ruleset that joins on them (durable.py), so any split is correct."""
    parts: list[tuple[int, ...]] = []
    current: list[int] = []
    joins: Counter[str] = Counter()
    keys: set[str] = set()
    for index, rule in enumerate(rules):
        rule_joins, rule_keys = _join_names(rule), patient_keys(rule)
        fits = (
            len(current) + 1 < MAX_RULES_PER_RULESET
            and all(joins[name] < MAX_JOINS_PER_FACT for name in rule_joins)
            and len(keys | rule_keys) <= MAX_PATIENT_KEYS
        )
        if current and not fits:
            parts.append(tuple(current))
            current, joins, keys = [], Counter(), set()
        current.append(index)
        joins.update(rule_joins)
        keys |= rule_keys
    return (*parts, tuple(current)) if current else tuple(parts)


def _join_names(rule: CompiledRule) -> list[str]:
    """The fact patterns a rule joins on besides the patient (phase markers included)."""
    return [
        json.dumps(next(iter(item.values())), sort_keys=True) for item in rule.pattern["all"][1:]
    ]


def patient_keys(rule: CompiledRule) -> frozenset[str]:
    """The patient-fact keys a rule's patient pattern names (compared or referenced)."""
    keys: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "$m":
                    keys.add(str(value))
                elif not key.startswith("$") and key != "t":
                    keys.add(key)
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(next(iter(rule.pattern["all"][0].values())))
    return frozenset(keys)


def _check_limits(compiled: list[CompiledRule], knowledge: km.KnowledgeBase) -> None:
    """What partitioning cannot fix: a single rule naming more patient keys than one fact holds."""
    for rule in compiled:
        count = len(patient_keys(rule))
        if count > MAX_PATIENT_KEYS:
            source = knowledge.rule(rule.rule_id)
            message = (
                f"{count} patient fields in one rule exceed the safe limit of {MAX_PATIENT_KEYS}"
            )
            raise RuleError(
                [Diagnostic("engine-limit", message, source.file, source.line, 1, rule.rule_id)]
            )
