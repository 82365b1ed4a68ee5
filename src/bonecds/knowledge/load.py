"""rules/*.yaml -> a validated KnowledgeBase, or a RuleError listing every problem found.

The directory holds `settings.yaml` (knowledge version, reference defaults), `sources.yaml`
(the bibliography), `vocabulary.yaml` (option, caution and context ids) and any number of rule
files, each a mapping with a `rules:` list. Every problem becomes a Diagnostic with a stable
code and the `file:line:column` of the offending key, and all of them are reported together.
"""

from __future__ import annotations

import dataclasses
import math
import re
import typing
from pathlib import Path
from typing import Any, TypeGuard

from pydantic import BaseModel

from bonecds._digests import files_digest
from bonecds.errors import Diagnostic, RuleError
from bonecds.knowledge._checks import check_references, lint_translations
from bonecds.knowledge._source import Reader, Reference
from bonecds.knowledge.conditions import check_field, read_condition, suggest
from bonecds.knowledge.i18n import TRANSLATED
from bonecds.knowledge.model import (
    EFFECT_KEYS,
    Branch,
    Citation,
    Effect,
    KnowledgeBase,
    ReferenceDefaults,
    Rule,
    RuleKind,
    Source,
    Translation,
    VocabularyItem,
)

__all__ = [
    "KINDS",
    "REQUIRED_RULE_KEYS",
    "RESERVED_FILES",
    "RULE_ID",
    "RULE_KEYS",
    "STATUSES",
    "load_rules",
]

CATALOGUE_FILE = "catalogue.yaml"
WAIVERS_FILE = "lint-waivers.yaml"
RESERVED_FILES = (
    "settings.yaml",
    "sources.yaml",
    "vocabulary.yaml",
    CATALOGUE_FILE,
    WAIVERS_FILE,
)
RULE_KEYS = {
    "id",
    "version",
    "status",
    "title",
    "kind",
    "catalogue",
    "when",
    "needs",
    "effects",
    "branches",
    "rationale",
    "evidence",
    "citations",
    "translations",
}
REQUIRED_RULE_KEYS = ("id", "version", "status", "title", "kind", "when", "rationale", "citations")
BRANCH_KEYS = {"name", "when", "needs", "effects"}
STATUSES = ("draft", "reviewed", "retired")
RULE_ID = r"^[a-z0-9]+(-[a-z0-9]+)*$"  # lower-case words joined by hyphens
KINDS = typing.get_args(RuleKind)


def load_rules(directory: Path | str) -> KnowledgeBase:
    """Load and check a rules directory; raise RuleError with every diagnostic if it is invalid."""
    root = Path(directory)
    diagnostics: list[Diagnostic] = []
    if not root.is_dir():
        hint = "give one with --rules DIR or the BONECDS_RULES environment variable"
        raise RuleError(
            [Diagnostic("no-rules-dir", "rules directory not found", str(root), hint=hint)]
        )
    settings_reader = _read_mapping(root / "settings.yaml", diagnostics)
    settings = settings_reader.doc.data if settings_reader else {}
    sources = _read_entries(root / "sources.yaml", "sources", Source, diagnostics)
    vocabulary = _read_entries(root / "vocabulary.yaml", "vocabulary", VocabularyItem, diagnostics)
    catalogue = _read_catalogue(root / CATALOGUE_FILE, diagnostics)
    references: list[Reference] = []
    rules: list[Rule] = []
    for path in sorted(root.glob("*.yaml")):
        if path.name not in RESERVED_FILES:
            rules.extend(_read_rule_file(path, diagnostics, references))
    if not rules and not diagnostics:
        diagnostics.append(Diagnostic("no-rules", "no rule files found", str(root)))
    knowledge = KnowledgeBase(
        rules=tuple(rules),
        sources=sources,
        vocabulary=vocabulary,
        version=str(settings.get("knowledge_version", "")),
        defaults=_defaults(settings_reader) if settings_reader else {},
        directory=str(root),
    )
    diagnostics.extend(check_references(knowledge, references, catalogue))
    if diagnostics:
        raise RuleError(sorted(diagnostics, key=lambda d: (d.file, d.line, d.column, d.code)))
    loaded = [
        path for path in root.glob("*.yaml") if path.name not in (CATALOGUE_FILE, WAIVERS_FILE)
    ]
    return dataclasses.replace(
        knowledge, lint=tuple(lint_translations(knowledge)), digest=files_digest(loaded)
    )


def _read_mapping(path: Path, diagnostics: list[Diagnostic]) -> Reader | None:
    if not path.exists():
        diagnostics.append(Diagnostic("missing-file", f"{path.name} is required", str(path)))
        return None
    errors_before = len(diagnostics)
    reader = Reader(path, diagnostics)
    if not isinstance(reader.doc.data, dict):
        if len(diagnostics) == errors_before:
            reader.report("invalid-value", "the file must be a mapping")
        return None
    return reader


def _read_entries(
    path: Path, key: str, model: type[BaseModel], diagnostics: list[Diagnostic]
) -> dict[str, Any]:
    reader = _read_mapping(path, diagnostics)
    if reader is None:
        return {}
    entries = reader.doc.data.get(key)
    if not isinstance(entries, dict):
        reader.report("missing-key", f"'{key}:' mapping is required")
        return {}
    result = {}
    for name, entry in entries.items():
        value = reader.validate(model, entry, (key, name))
        if value is not None:
            result[str(name)] = value
    return result


def _defaults(reader: Reader) -> dict[str, float]:
    defaults = reader.doc.data.get("reference_defaults", {})
    values = {}
    for name in [field.name for field in dataclasses.fields(ReferenceDefaults)]:
        entry = defaults.get(name) if isinstance(defaults, dict) else None
        value = entry.get("value") if isinstance(entry, dict) else None
        if not _finite_number(value):
            message = f"reference_defaults.{name}.value must be a finite number"
            reader.report("missing-key", message, ("reference_defaults", name, "value"))
            continue
        values[name] = float(value)
    return values


def _finite_number(value: Any) -> TypeGuard[float]:
    # .nan or .inf would switch every calcium comparison off, silently.
    if not isinstance(value, int | float) or isinstance(value, bool):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an integer too large for a float
        return False


def _read_catalogue(path: Path, diagnostics: list[Diagnostic]) -> set[str] | None:
    """The entry ids of catalogue.yaml, or None when the directory has none (then the
    `catalogue:` of a rule is not checked)."""
    if not path.exists():
        return None
    reader = _read_mapping(path, diagnostics)
    entries = reader.doc.data.get("entries") if reader else None
    if reader and not isinstance(entries, dict):
        reader.report("missing-key", "'entries:' mapping is required")
    return {str(name) for name in entries} if isinstance(entries, dict) else set()


def _read_rule_file(
    path: Path, diagnostics: list[Diagnostic], references: list[Reference]
) -> list[Rule]:
    reader = Reader(path, diagnostics, references)
    data = reader.doc.data
    if reader.empty:
        reader.report("no-rules", "the file is empty; a rule file needs a 'rules:' list")
    if data is None:
        return []
    if not isinstance(data, dict) or not isinstance(data.get("rules"), list):
        reader.report("invalid-value", "a rule file must be a mapping with a 'rules:' list")
        return []
    for key in data:
        if key not in ("rules", "section", "title"):
            reader.report("unknown-key", f"unknown top-level key '{key}'", (key,))
    rules = []
    for index, raw in enumerate(data["rules"]):
        rule = _read_rule(reader, raw, ("rules", index))
        if rule is not None:
            rules.append(rule)
    return rules


def _read_rule(reader: Reader, raw: Any, path: tuple[Any, ...]) -> Rule | None:
    if not isinstance(raw, dict):
        reader.report("invalid-value", "a rule must be a mapping", path)
        return None
    rule_id = str(raw.get("id", ""))
    errors_before = len(reader.diagnostics)
    _refer_rule(reader, raw, path, rule_id)
    misplaced = _misplaced_keys(reader, raw.get("when"), (*path, "when"), rule_id)
    for key in raw:
        if key not in RULE_KEYS:
            hint = suggest(key, RULE_KEYS)
            reader.report("unknown-key", f"unknown rule key '{key}'", (*path, key), rule_id, hint)
    for key in REQUIRED_RULE_KEYS:
        if key not in raw:
            reader.report("missing-key", f"rule is missing '{key}'", path, rule_id)
    _check_choice(reader, raw, "status", STATUSES, path, rule_id)
    _check_choice(reader, raw, "kind", KINDS, path, rule_id)
    version = raw.get("version", 1)
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        message = "version must be an integer from 1"
        reader.report("invalid-value", message, (*path, "version"), rule_id)
    if "id" in raw and not re.fullmatch(RULE_ID, rule_id):
        message = f"rule id '{rule_id}' must be lower-case words joined by hyphens"
        reader.report("invalid-value", message, (*path, "id"), rule_id)
    when = (
        read_condition(reader, raw.get("when"), (*path, "when"), rule_id) if "when" in raw else None
    )
    needs = _read_needs(reader, raw.get("needs", []), (*path, "needs"), rule_id)
    effects = _read_effects(reader, raw.get("effects", []), (*path, "effects"), rule_id)
    branches = _read_branches(reader, raw.get("branches", []), (*path, "branches"), rule_id)
    if not effects and not branches and not misplaced & {"effects", "branches"}:
        reader.report("no-effects", "rule has neither effects nor branches", path, rule_id)
    translations = _read_translations(
        reader, raw.get("translations") or {}, (*path, "translations"), rule_id
    )
    citations = []
    for index, item in enumerate(raw.get("citations") or []):
        citation = reader.validate(Citation, item, (*path, "citations", index), rule_id)
        if citation is not None:
            citations.append(citation)
    if len(reader.diagnostics) > errors_before or when is None:
        return None
    rule_branches = tuple(branches)
    if effects:
        line = reader.doc.position((*path, "effects"))[0]
        rule_branches = (Branch("", None, (), tuple(effects), line), *rule_branches)
    return Rule(
        id=rule_id,
        version=raw["version"],
        status=raw["status"],
        title=str(raw["title"]),
        kind=raw["kind"],
        catalogue=str(raw.get("catalogue", "")),
        when=when,
        needs=needs,
        branches=rule_branches,
        rationale=" ".join(str(raw["rationale"]).split()),
        evidence=str(raw.get("evidence", "")),
        citations=tuple(citations),
        file=reader.file,
        line=reader.doc.position(path)[0],
        translations=translations,
    )


def _refer_rule(reader: Reader, raw: dict[str, Any], path: tuple[Any, ...], rule_id: str) -> None:
    """Record the ids this rule's metadata names, each at its own key."""
    if "id" in raw:
        reader.refer("rule", rule_id, (*path, "id"), rule_id)
    if "catalogue" in raw:
        reader.refer("catalogue", raw["catalogue"], (*path, "catalogue"), rule_id)
    citations = raw.get("citations")
    for index, item in enumerate(citations if isinstance(citations, list) else []):
        if isinstance(item, dict) and isinstance(item.get("source"), str):
            reader.refer("source", item["source"], (*path, "citations", index, "source"), rule_id)


def _misplaced_keys(reader: Reader, when: Any, path: tuple[Any, ...], rule_id: str) -> set[str]:
    """Rule keys indented under `when:` (YAML reads them as part of the condition): reported
    at the key, and taken out so the condition itself is still checked."""
    if not isinstance(when, dict):
        return set()
    misplaced = {key for key in when if key in RULE_KEYS and key != "when"}
    for key in sorted(misplaced, key=lambda name: reader.doc.position((*path, name))):
        message = f"'{key}' is indented under 'when:'; line it up with 'when:'"
        reader.report("invalid-condition", message, (*path, key), rule_id)
        del when[key]
    return misplaced


def _read_translations(
    reader: Reader, raw: Any, path: tuple[Any, ...], rule_id: str
) -> dict[str, Translation]:
    if not isinstance(raw, dict):
        reader.report(
            "invalid-value", "translations must map a language code to texts", path, rule_id
        )
        return {}
    result = {}
    for language, texts in raw.items():
        if language not in TRANSLATED:
            reader.report(
                "unknown-key",
                f"unsupported language '{language}'",
                (*path, language),
                rule_id,
                f"expected one of: {', '.join(TRANSLATED)}",
            )
            continue
        translation = reader.validate(Translation, _unfold(texts), (*path, language), rule_id)
        if translation is not None:
            result[language] = translation
    return result


_FOLDED_SPACE = re.compile(r"(?<=[\u3000-\u9fff\uff00-\uffef])\s+(?=[\u3000-\u9fff\uff00-\uffef])")


def _unfold(value: Any) -> Any:
    """Remove the spaces YAML folding puts between Chinese characters at line breaks."""
    if isinstance(value, str):
        return _FOLDED_SPACE.sub("", value)
    if isinstance(value, dict):
        return {key: _unfold(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_unfold(item) for item in value]
    return value


def _check_choice(
    reader: Reader,
    raw: dict[str, Any],
    key: str,
    allowed: tuple[str, ...],
    path: tuple[Any, ...],
    rule_id: str,
) -> None:
    if key in raw and raw[key] not in allowed:
        hint = f"expected one of: {', '.join(allowed)}"
        reader.report(
            "invalid-value", f"{key} '{raw[key]}' is not allowed", (*path, key), rule_id, hint
        )


def _items(
    reader: Reader, raw: Any, path: tuple[Any, ...], rule_id: str, not_a_list: str
) -> list[tuple[tuple[Any, ...], Any]]:
    """Each item of a YAML list with its path; none when `raw` is not a list (reported with the
    message `not_a_list`)."""
    if not isinstance(raw, list):
        reader.report("invalid-value", not_a_list, path, rule_id)
        return []
    return [((*path, index), item) for index, item in enumerate(raw)]


def _read_needs(reader: Reader, raw: Any, path: tuple[Any, ...], rule_id: str) -> tuple[str, ...]:
    items = _items(reader, raw, path, rule_id, "needs must be a list of field paths")
    for where, name in items:
        check_field(reader, name, where, rule_id)
    return tuple(str(name) for _, name in items)


def _read_effects(reader: Reader, raw: Any, path: tuple[Any, ...], rule_id: str) -> list[Effect]:
    effects = []
    for where, item in _items(reader, raw, path, rule_id, "effects must be a list"):
        _refer_effect(reader, item, where, rule_id)
        kinds = [key for key in EFFECT_KEYS if isinstance(item, dict) and key in item]
        if len(kinds) != 1:
            expected = ", ".join(EFFECT_KEYS)
            reader.report(
                "invalid-effect", f"an effect needs exactly one of: {expected}", where, rule_id
            )
            continue
        effect = reader.validate(EFFECT_KEYS[kinds[0]], item, where, rule_id)
        if effect is not None:
            effects.append(effect)
            for index, name in enumerate(getattr(effect, "request", [])):
                check_field(reader, name, (*where, "request", index), rule_id)
    return effects


# effect key -> the kind of id it names (a list of ids for contraindicate, gates, applies_to)
_EFFECT_IDS = {
    "propose": "option",
    "adjust": "option",
    "contraindicate": "option",
    "gates": "option",
    "applies_to": "option",
    "caution": "caution",
    "context": "context",
    "derive": "derives",
}


def _refer_effect(reader: Reader, item: Any, where: tuple[Any, ...], rule_id: str) -> None:
    """Record every id an effect names at its own key, whether or not the effect is valid."""
    if not isinstance(item, dict):
        return
    for key, kind in _EFFECT_IDS.items():
        value = item.get(key)
        if isinstance(value, str) and not (key == "applies_to" and value == "patient"):
            reader.refer(kind, value, (*where, key), rule_id)
        elif isinstance(value, list):
            for index, name in enumerate(value):
                if isinstance(name, str) and name != "patient":
                    reader.refer(kind, name, (*where, key, index), rule_id)


def _read_branches(reader: Reader, raw: Any, path: tuple[Any, ...], rule_id: str) -> list[Branch]:
    branches = []
    for where, item in _items(reader, raw, path, rule_id, "branches must be a list"):
        if not isinstance(item, dict) or "name" not in item or "effects" not in item:
            reader.report("invalid-value", "a branch needs 'name' and 'effects'", where, rule_id)
            continue
        for key in item:
            if key not in BRANCH_KEYS:
                reader.report("unknown-key", f"unknown branch key '{key}'", (*where, key), rule_id)
        when = (
            read_condition(reader, item["when"], (*where, "when"), rule_id)
            if "when" in item
            else None
        )
        needs = _read_needs(reader, item.get("needs", []), (*where, "needs"), rule_id)
        effects = _read_effects(reader, item["effects"], (*where, "effects"), rule_id)
        line = reader.doc.position(where)[0]
        branches.append(Branch(str(item["name"]), when, needs, tuple(effects), line))
    return branches
