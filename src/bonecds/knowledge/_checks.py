"""Cross-file checks of a knowledge base: duplicate rule ids, ids that the vocabulary does not
define, citations missing from the bibliography, derived facts no rule derives, catalogue
entries that do not exist, and (as lint) texts without their Chinese translation or whose
translation was written for English that has since changed."""

from __future__ import annotations

from pathlib import Path

from bonecds.errors import Diagnostic
from bonecds.knowledge._source import Reference
from bonecds.knowledge.conditions import suggest
from bonecds.knowledge.i18n import english_digest, missing_translations, unused_translations
from bonecds.knowledge.model import All, Any_, Condition, KnowledgeBase, Not, Proposed, Rule

__all__ = ["check_references", "lint_translations", "option_tests", "used_ids"]


def check_references(
    knowledge: KnowledgeBase, references: list[Reference], catalogue: set[str] | None
) -> list[Diagnostic]:
    """Every id a rule file names, resolved at the key that names it: duplicate rule ids,
    unknown option/caution/context ids, citations missing from sources.yaml, derived facts no
    rule derives, and catalogue entries missing from catalogue.yaml (when there is one)."""
    diagnostics: list[Diagnostic] = [
        Diagnostic(
            "missing-translation", f"vocabulary '{name}' has no label_zh", knowledge.directory
        )
        for name, item in knowledge.vocabulary.items()
        if not item.label_zh
    ]
    first_use: dict[str, Reference] = {}
    derived = {ref.name for ref in references if ref.kind == "derives"}
    for ref in references:
        if ref.kind == "rule":
            if ref.name in first_use:
                first = first_use[ref.name]
                message = f"rule id '{ref.name}' is already used at {first.file}:{first.line}"
                diagnostics.append(_at(ref, "duplicate-rule-id", message))
            first_use.setdefault(ref.name, ref)
            continue
        problem = _problem(knowledge, ref, derived, catalogue)
        if problem:
            diagnostics.append(_at(ref, *problem))
    return list(dict.fromkeys(diagnostics))


def _at(ref: Reference, code: str, message: str, hint: str = "") -> Diagnostic:
    return Diagnostic(code, message, ref.file, ref.line, ref.column, ref.rule_id, hint)


def _problem(
    knowledge: KnowledgeBase, ref: Reference, derived: set[str], catalogue: set[str] | None
) -> tuple[str, str, str] | None:
    """(code, message, hint) when the named id is not defined, else None."""
    name = ref.name
    if ref.kind == "derives":
        return None
    if ref.kind == "source":
        if name in knowledge.sources:
            return None
        message = f"citation '{name}' is not in sources.yaml"
        return "unresolved-citation", message, suggest(name, knowledge.sources)
    if ref.kind == "catalogue":
        if catalogue is None or name in catalogue:
            return None
        message = f"catalogue entry '{name}' is not in catalogue.yaml"
        return "unknown-catalogue", message, suggest(name, catalogue)
    if ref.kind == "derived":
        if name in derived:
            return None
        return "unknown-derived", f"no rule derives '{name}'", suggest(name, derived)
    item = knowledge.vocabulary.get(name)
    allowed = ("emergency", "option") if ref.kind == "option" else (ref.kind,)
    if item is not None and item.kind in allowed:
        return None
    names = [key for key, entry in knowledge.vocabulary.items() if entry.kind in allowed]
    return f"unknown-{ref.kind}", f"'{name}' is not a known {ref.kind} id", suggest(name, names)


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
                lint.append(
                    Diagnostic("missing-translation", message, rule.file, rule.line, 1, rule.id)
                )
            for unused in unused_translations(rule):
                message = f"translation {unused} stands for no text of this rule"
                lint.append(
                    Diagnostic("unused-translation", message, rule.file, rule.line, 1, rule.id)
                )
            stale = _stale_translation(rule)
            if stale:
                lint.append(stale)
    return lint


def _stale_translation(rule: Rule, language: str = "zh") -> Diagnostic | None:
    """A translation whose recorded `en_digest` is not the digest of the rule's English now:
    an English text changed (or was added) since the translation was written, or the
    translation never recorded which English it translates."""
    translation = rule.translations.get(language)
    if translation is None:
        return None
    expected = english_digest(rule)
    if translation.en_digest == expected:
        return None
    if translation.en_digest is None:
        message = f"translations.{language} does not record the English it translates"
    else:
        message = (
            f"translations.{language} was written for other English (en_digest "
            f"{translation.en_digest}; the English texts now give {expected})"
        )
    hint = (
        f"compare every {language} text of this rule with its English (git log -p shows what "
        f"changed), correct them, then set translations.{language}.en_digest: {expected}"
    )
    return Diagnostic("stale-translation", message, rule.file, rule.line, 1, rule.id, hint)


def used_ids(knowledge: KnowledgeBase) -> set[str]:
    """Every vocabulary id an active rule's effects or conditions name."""
    used: set[str] = set()
    for rule in knowledge.rules:
        if not rule.active:
            continue
        for branch in rule.branches:
            used |= option_tests(branch.when)
            for effect in branch.effects:
                data = effect.model_dump()
                for key in ("propose", "adjust", "caution", "context"):
                    if key in data:
                        used.add(data[key])
                for key in ("contraindicate", "gates", "applies_to"):
                    used.update(data.get(key, []))
        used |= option_tests(rule.when)
    return used


def option_tests(condition: Condition | None) -> set[str]:
    if isinstance(condition, Proposed):
        return {condition.option}
    if isinstance(condition, All | Any_):
        return set().union(*(option_tests(item) for item in condition.items))
    if isinstance(condition, Not):
        return option_tests(condition.item)
    return set()
