"""Conditions in plain words, each with the patient's value and whether it was met.

This is presentation, not decision: durable_rules decides what fires. The trace re-reads the
same conditions with the same three-valued logic (met / not met / unknown) so a clinician can
see why a rule fired or did not; tests check that the two always agree.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any, Literal

from bonecds.knowledge.i18n import Texts
from bonecds.knowledge.model import (
    All,
    Any_,
    Condition,
    Derive,
    Derived,
    FieldRef,
    FieldTest,
    KnowledgeBase,
    Not,
    Propose,
    Proposed,
)
from bonecds.profile.fields import FIELDS
from bonecds.report.model import Candidate, ConditionLine, Report, RuleExplanation, WhyNot

__all__ = ["condition_status", "describe", "explain_fired", "why_not"]

Status = Literal["met", "not met", "unknown"]

_WORDS = {
    "eq": "is",
    "ne": "is not",
    "lt": "<",
    "lte": "<=",
    "gt": ">",
    "gte": ">=",
    "in": "is one of",
    "not_in": "is none of",
    "contains": "includes",
    "not_contains": "does not include",
}


def describe(condition: Condition) -> str:
    """A condition in plain words, on one line."""
    if isinstance(condition, All | Any_):
        joiner = " and " if isinstance(condition, All) else " or "
        return "(" + joiner.join(describe(item) for item in condition.items) + ")"
    if isinstance(condition, Not):
        return f"not {describe(condition.item)}"
    return _leaf_text(condition)


def _leaf_text(condition: Condition) -> str:
    if isinstance(condition, Proposed):
        purpose = f" for {', '.join(condition.purposes)}" if condition.purposes else ""
        return f"option {condition.option} is proposed{purpose}"
    if isinstance(condition, Derived):
        return f"{condition.name} holds"
    assert isinstance(condition, FieldTest)
    unit = FIELDS[condition.field].unit
    if condition.op == "known":
        return f"{condition.field} is {'known' if condition.value else 'unknown'}"
    value = condition.value
    if isinstance(value, FieldRef):
        shown = value.field
    elif isinstance(value, list):
        shown = "[" + ", ".join(_show(v) for v in value) + "]"
    else:
        shown = f"{_show(value)} {unit}".strip()
    return f"{condition.field} {_WORDS[condition.op]} {shown}"


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def trace(
    condition: Condition, values: dict[str, Any], produced: set[str], depth: int = 0
) -> list[ConditionLine]:
    """Evaluate a condition for display. `produced` holds `option:<id>` and `derived:<name>`."""
    status = condition_status(condition, values, produced)
    if isinstance(condition, All | Any_):
        head = "all of:" if isinstance(condition, All) else "any of:"
        lines = [ConditionLine(depth=depth, text=head, status=status)]
        for item in condition.items:
            lines.extend(trace(item, values, produced, depth + 1))
        return lines
    if isinstance(condition, Not):
        return [
            ConditionLine(depth=depth, text="not:", status=status),
            *trace(condition.item, values, produced, depth + 1),
        ]
    value = values.get(condition.field) if isinstance(condition, FieldTest) else None
    return [ConditionLine(depth=depth, text=_leaf_text(condition), status=status, value=value)]


def condition_status(condition: Condition, values: dict[str, Any], produced: set[str]) -> Status:
    """Kleene three-valued evaluation, matching the engine's treatment of unknown values."""
    if isinstance(condition, All):
        results = [condition_status(item, values, produced) for item in condition.items]
        return "not met" if "not met" in results else "unknown" if "unknown" in results else "met"
    if isinstance(condition, Any_):
        results = [condition_status(item, values, produced) for item in condition.items]
        return "met" if "met" in results else "unknown" if "unknown" in results else "not met"
    if isinstance(condition, Not):
        inner = condition_status(condition.item, values, produced)
        return {"met": "not met", "not met": "met", "unknown": "unknown"}[inner]  # type: ignore[return-value]
    if isinstance(condition, Proposed):
        wanted = [f"option:{condition.option}:{p}" for p in condition.purposes]
        wanted = wanted or [f"option:{condition.option}"]
        return "met" if any(key in produced for key in wanted) else "not met"
    if isinstance(condition, Derived):
        return "met" if f"derived:{condition.name}" in produced else "not met"
    return _field_status(condition, values)


def _field_status(test: FieldTest, values: dict[str, Any]) -> Status:
    present = test.field in values
    if test.op == "known":
        return "met" if present == test.value else "not met"
    if not present:
        return "unknown"
    actual = values[test.field]
    expected = test.value
    if isinstance(expected, FieldRef):
        if expected.field not in values:
            return "unknown"
        expected = values[expected.field]
    return "met" if _compare(test.op, actual, expected) else "not met"


_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "eq": operator.eq,
    "ne": operator.ne,
    "lt": operator.lt,
    "lte": operator.le,
    "gt": operator.gt,
    "gte": operator.ge,
    "in": lambda actual, expected: actual in expected,
    "not_in": lambda actual, expected: actual not in expected,
    "contains": lambda actual, expected: expected in actual,
    "not_contains": lambda actual, expected: expected not in actual,
}


def _compare(op: str, actual: Any, expected: Any) -> bool:
    return bool(_COMPARE[op](actual, expected))


def explain_fired(
    fired: list[tuple[str, str]],
    knowledge: KnowledgeBase,
    values: dict[str, Any],
    language: str = "en",
) -> list[RuleExplanation]:
    """For each fired (rule id, branch), the rule's conditions traced against the patient
    (the rule's title in `language`; the renderers put the conditions into words)."""
    texts = Texts(knowledge, language)
    produced = _produced(fired, knowledge)
    explanations = []
    for rule_id, branch_name in fired:
        rule = knowledge.rule(rule_id)
        branch = next(b for b in rule.branches if b.name == branch_name)
        condition = rule.condition(branch)
        lines = trace(condition, values, produced)
        explanations.append(
            RuleExplanation(
                rule=rule_id, branch=branch_name, title=texts.title(rule), conditions=lines
            )
        )
    return explanations


def _produced(fired: list[tuple[str, str]], knowledge: KnowledgeBase) -> set[str]:
    produced: set[str] = set()
    for rule_id, branch_name in fired:
        rule = knowledge.rule(rule_id)
        branch = next(b for b in rule.branches if b.name == branch_name)
        for effect in branch.effects:
            if isinstance(effect, Propose):
                produced.add(f"option:{effect.propose}")
                produced.add(f"option:{effect.propose}:{effect.purpose}")
            elif isinstance(effect, Derive):
                produced.add(f"derived:{effect.derive}")
    return produced


def why_not(
    option: str, report: Report, knowledge: KnowledgeBase, values: dict[str, Any]
) -> WhyNot:
    """Each rule that could propose `option`, and per condition met / not met / unknown
    (titles and the label in the report's language)."""
    texts = Texts(knowledge, report.language)
    fired = {(item.rule, item.branch) for item in report.rules_fired}
    produced = _produced(sorted(fired), knowledge)
    candidates = []
    for rule in knowledge.rules:
        for branch in rule.branches:
            if not any(isinstance(e, Propose) and e.propose == option for e in branch.effects):
                continue
            condition = rule.condition(branch)
            status = (
                "fired"
                if (rule.id, branch.name) in fired
                else condition_status(condition, values, produced)
            )
            lines = trace(condition, values, produced)
            candidates.append(
                Candidate(
                    rule=rule.id,
                    branch=branch.name,
                    title=texts.title(rule),
                    status=status,
                    conditions=lines,
                )
            )
    blocked = [c for c in report.contraindicated if c.id == option]
    ranked = any(item.id == option for item in report.ranked)
    outcome = "ranked" if ranked else "contraindicated" if blocked else "not proposed"
    reasons = blocked[0].reasons if blocked else []
    return WhyNot(
        option=option,
        label=texts.label(option),
        outcome=outcome,
        reasons=reasons,
        candidates=candidates,
    )
