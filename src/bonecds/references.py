"""Cross-file checks of a loaded knowledge base: duplicate rule ids, ids that the vocabulary
does not define, citations missing from the bibliography, derived facts no rule derives, and
(as lint) texts without their Chinese translation."""

from __future__ import annotations

from pathlib import Path

from bonecds.conditions import suggest
from bonecds.errors import Diagnostic
from bonecds.i18n import missing_translations
from bonecds.rules import (
    All,
    Any_,
    Condition,
    Derive,
    Derived,
    Effect,
    KnowledgeBase,
    Not,
    Proposed,
    Rule,
)


def check_references(knowledge: KnowledgeBase) -> list[Diagnostic]:
    """Cross-rule checks: duplicate ids, unknown option/caution ids, citations, derived names."""
    diagnostics: list[Diagnostic] = [
        Diagnostic(
            "missing-translation", f"vocabulary '{name}' has no label_zh", knowledge.directory
        )
        for name, item in knowledge.vocabulary.items()
        if not item.label_zh
    ]
    seen: dict[str, Rule] = {}
    derived_names = {
        effect.derive
        for rule in knowledge.rules
        for branch in rule.branches
        for effect in branch.effects
        if isinstance(effect, Derive)
    }
    for rule in knowledge.rules:
        if rule.id in seen:
            first = seen[rule.id]
            message = f"rule id '{rule.id}' is already used at {first.file}:{first.line}"
            diagnostics.append(_at(rule, "duplicate-rule-id", message))
        seen.setdefault(rule.id, rule)
        for citation in rule.citations:
            if citation.source not in knowledge.sources:
                message = f"citation '{citation.source}' is not in sources.yaml"
                hint = suggest(citation.source, knowledge.sources)
                diagnostics.append(_at(rule, "unresolved-citation", message, hint))
        for kind, item_id, line in _referenced_ids(rule):
            problem = _id_problem(knowledge, kind, item_id, derived_names)
            if problem:
                diagnostics.append(_at(rule, *problem, line=line))
    return list(dict.fromkeys(diagnostics))


def _at(rule: Rule, code: str, message: str, hint: str = "", line: int = 0) -> Diagnostic:
    return Diagnostic(code, message, rule.file, line or rule.line, 1, rule.id, hint)


def _referenced_ids(rule: Rule) -> list[tuple[str, str, int]]:
    """(kind, id, line) of every id a rule names; line 0 when only the rule's line is known."""
    refs: list[tuple[str, str, int]] = []
    for condition in [rule.when, *(branch.when for branch in rule.branches)]:
        refs.extend(_condition_ids(condition))
    for branch in rule.branches:
        for effect in branch.effects:
            refs.extend((kind, item_id, 0) for kind, item_id in _effect_ids(effect))
    return refs


def _condition_ids(condition: Condition | None) -> list[tuple[str, str, int]]:
    if isinstance(condition, Proposed):
        return [("option", condition.option, condition.line)]
    if isinstance(condition, Derived):
        return [("derived", condition.name, condition.line)]
    if isinstance(condition, All | Any_):
        return [ref for item in condition.items for ref in _condition_ids(item)]
    if isinstance(condition, Not):
        return _condition_ids(condition.item)
    return []


def _effect_ids(effect: Effect) -> list[tuple[str, str]]:
    data = effect.model_dump()
    refs = []
    for key in ("propose", "adjust"):
        if key in data:
            refs.append(("option", data[key]))
    for key in ("contraindicate", "gates"):
        refs.extend(("option", item) for item in data.get(key, []))
    if "applies_to" in data:
        refs.extend(("option", item) for item in data["applies_to"] if item != "patient")
    if "caution" in data:
        refs.append(("caution", data["caution"]))
    if "context" in data:
        refs.append(("context", data["context"]))
    return refs


def _id_problem(
    knowledge: KnowledgeBase, kind: str, item_id: str, derived: set[str]
) -> tuple[str, str, str] | None:
    """(code, message, hint) when the id is not defined, else None."""
    if kind == "derived":
        if item_id in derived:
            return None
        return "unknown-derived", f"no rule derives '{item_id}'", suggest(item_id, derived)
    item = knowledge.vocabulary.get(item_id)
    allowed = ("emergency", "option") if kind == "option" else (kind,)
    if item is not None and item.kind in allowed:
        return None
    names = [name for name, entry in knowledge.vocabulary.items() if entry.kind in allowed]
    return f"unknown-{kind}", f"'{item_id}' is not a known {kind} id", suggest(item_id, names)


def lint_translations(knowledge: KnowledgeBase) -> list[Diagnostic]:
    """Clinician-facing texts without a Chinese translation. They do not stop evaluation in
    English, but `bonecds rules check` fails on them."""
    lint = [
        Diagnostic(
            "missing-translation",
            f"vocabulary '{name}' has no label_zh",
            str(Path(knowledge.directory) / "vocabulary.yaml"),
        )
        for name, item in knowledge.vocabulary.items()
        if not item.label_zh
    ]
    for rule in knowledge.rules:
        if rule.active:
            for missing in missing_translations(rule):
                message = f"no Chinese translation for {missing}"
                lint.append(_at(rule, "missing-translation", message))
    return lint
