"""Report texts in the reader's language: English by default, Chinese with `--lang zh`.

One of the two source reviews is Chinese, and so are many of its readers. Rule texts come from
each rule's `translations`, labels from `label_zh` in the vocabulary; `bonecds rules check`
refuses a knowledge base where a clinician-facing text has no translation.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

from bonecds.knowledge import model as km

__all__ = [
    "DISCLAIMERS",
    "LANGUAGES",
    "TRANSLATED",
    "Texts",
    "english_digest",
    "missing_translations",
    "show_value",
    "unused_translations",
]

_Texted = TypeVar("_Texted", km.Dose, km.Schedule)

LANGUAGES = ("en", "zh")
TRANSLATED = LANGUAGES[1:]  # English is what the rules are written in

DISCLAIMERS = {
    "en": (
        "Research prototype for clinical decision support; not a medical device and not clinical "
        "advice. Every output must be checked by a qualified clinician against the cited sources "
        "and the whole clinical picture."
    ),
    "zh": (
        "临床决策支持研究原型；不是医疗器械，也不构成临床建议。所有输出都必须由合格的临床医生"
        "对照所引用的来源并结合完整的临床情况进行核对。"
    ),
}

WORDS = {
    "en": {
        "patient": "Patient",
        "unknown": "Unknown",
        "needed": "needed to decide",
        "yes": "yes",
        "no": "no",
        "none": "none",
        "stop": ".",
        "colon": ": ",
        "semicolon": "; ",
        "comma": ", ",
        "conflict": "{text} (conflicting dose rules: {amount} {unit} also proposed; lower shown)",
    },
    "zh": {
        "patient": "患者",
        "unknown": "未知",
        "needed": "决策所需",
        "yes": "是",
        "no": "否",
        "none": "无",
        "stop": "。",
        "colon": "：",
        "semicolon": "；",
        "comma": "、",
        "conflict": "{text}（剂量规则相互冲突：另有规则提出 {amount} {unit}；此处显示较低剂量）",
    },
}


class Texts:
    """Picks each clinician-facing text of the report in one language."""

    def __init__(self, knowledge: km.KnowledgeBase, language: str = "en") -> None:
        if language not in LANGUAGES:
            raise ValueError(f"unsupported language '{language}'")
        self.knowledge = knowledge
        self.language = language
        self.disclaimer = DISCLAIMERS[language]
        self.words = WORDS[language]

    def _translation(self, rule: km.Rule) -> km.Translation | None:
        return rule.translations.get(self.language) if self.language != "en" else None

    def label(self, item_id: str) -> str:
        item = self.knowledge.vocabulary.get(item_id)
        if item is None:
            return item_id
        return item.label_zh if self.language == "zh" and item.label_zh else item.label

    def title(self, rule: km.Rule) -> str:
        translation = self._translation(rule)
        return translation.title if translation else rule.title

    def rationale(self, rule: km.Rule) -> str:
        translation = self._translation(rule)
        return translation.rationale if translation else rule.rationale

    def caution(self, rule: km.Rule, effect: km.Caution, branch: str = "") -> str:
        return self._keyed(rule, "cautions", effect.caution, branch, effect.text)

    def reason(
        self, rule: km.Rule, effect: km.Contraindicate, option: str, branch: str = ""
    ) -> str:
        return self._keyed(rule, "reasons", option, branch, effect.reason)

    def request(self, rule: km.Rule, effect: km.Request, field: str, branch: str = "") -> str:
        return self._keyed(rule, "requests", field, branch, effect.reason)

    def context(self, rule: km.Rule, effect: km.Context, branch: str = "") -> str:
        return self._keyed(rule, "context", effect.context, branch, effect.text)

    def adjustment(self, rule: km.Rule, option: str, reason: str, branch: str = "") -> str:
        return self._keyed(rule, "adjustments", option, branch, reason)

    def dose(
        self, rule: km.Rule, option: str, dose: km.Dose | None, branch: str = ""
    ) -> km.Dose | None:
        return self._retexted(rule, "doses", option, branch, dose)

    def schedule(
        self, rule: km.Rule, option: str, schedule: km.Schedule | None, branch: str = ""
    ) -> km.Schedule | None:
        return self._retexted(rule, "schedules", option, branch, schedule)

    def _retexted(
        self, rule: km.Rule, group: str, option: str, branch: str, item: _Texted | None
    ) -> _Texted | None:
        """A dose or schedule with its text translated; the very item when the text stays, so
        an English report shares it."""
        if item is None:
            return None
        text = self._keyed(rule, group, option, branch, item.text)
        return item if text == item.text else item.model_copy(update={"text": text})

    def option_text(self, rule: km.Rule, effect: km.Propose, branch: str = "") -> str:
        return (
            self._keyed(rule, "texts", effect.propose, branch, effect.text) if effect.text else ""
        )

    def _keyed(self, rule: km.Rule, group: str, key: str, branch: str, english: str) -> str:
        """A branch-specific text (`<branch>/<key>`) wins over the rule-wide one (`<key>`)."""
        translation = self._translation(rule)
        if translation is None:
            return english
        texts: dict[str, str] = getattr(translation, group)
        return texts.get(f"{branch}/{key}", texts.get(key, english))

    def locators(self, rule: km.Rule) -> list[str]:
        """Each citation's locator (where in the source to look), in the rule's citation order."""
        translation = self._translation(rule)
        if translation is None:
            return [citation.locator for citation in rule.citations]
        return [
            translation.locators.get(key, citation.locator) if citation.locator else ""
            for key, citation in zip(locator_keys(rule), rule.citations, strict=True)
        ]

    def note(self, rule: km.Rule, effect: km.Note) -> str:
        translation = self._translation(rule)
        if translation is None:
            return effect.note
        notes = [e for b in rule.branches for e in b.effects if isinstance(e, km.Note)]
        index = next(i for i, candidate in enumerate(notes) if candidate is effect)
        return translation.notes[index] if index < len(translation.notes) else effect.note


def locator_keys(rule: km.Rule) -> list[str]:
    """The translation key of each citation's locator: its source key, and `<source>#<n>` for
    the n-th citation of a source the rule cites more than once."""
    seen: dict[str, int] = {}
    keys = []
    for citation in rule.citations:
        seen[citation.source] = seen.get(citation.source, 0) + 1
        count = seen[citation.source]
        keys.append(citation.source if count == 1 else f"{citation.source}#{count}")
    return keys


def missing_translations(rule: km.Rule, language: str = "zh") -> list[str]:
    """What a rule's translation lacks: each clinician-facing text without its translation
    (rule-wide `<key>` or branch-specific `<branch>/<key>`). Where branches say different
    things under one key, one rule-wide text cannot translate them all: each such branch
    needs its own `<branch>/<key>`."""
    translation = rule.translations.get(language)
    if translation is None:
        return [f"translations.{language}"]
    varies = _varying_keys(rule)
    missing: list[str] = []
    for branch in rule.branches:
        for group, key, _ in _translatable(branch.effects):
            texts: dict[str, str] = getattr(translation, group)
            # The rule-wide effects (branch "") own the plain key.
            own = f"{branch.name}/{key}" if branch.name else key
            if own in texts:
                continue
            if (group, key) in varies:
                missing.append(f"{group}.{branch.name}/{key} (the text differs by branch)")
            elif key not in texts:
                missing.append(f"{group}.{key}")
    missing += [
        f"locators.{key}"
        for key, citation in zip(locator_keys(rule), rule.citations, strict=True)
        if citation.locator and key not in translation.locators
    ]
    notes = sum(isinstance(e, km.Note) for b in rule.branches for e in b.effects)
    if len(translation.notes) < notes:
        missing.append(f"notes ({notes} needed, {len(translation.notes)} given)")
    return list(dict.fromkeys(missing))


# The keyed texts of a translation (`cautions`, ..., `locators`): every text-map field of the
# model, so a group added there is checked here without another list to keep.
_KEYED_GROUPS = tuple(
    name for name, info in km.Translation.model_fields.items() if info.annotation == dict[str, str]
)


def unused_translations(rule: km.Rule, language: str = "zh") -> list[str]:
    """Translation keys that stand for no text of the rule (a misspelt id, or the text of an
    effect since removed): they would never be shown, and a reader would trust them."""
    translation = rule.translations.get(language)
    if translation is None:
        return []
    wanted: dict[str, set[str]] = {"locators": set(locator_keys(rule))}
    for branch in rule.branches:
        for group, key, _ in _translatable(branch.effects):
            wanted.setdefault(group, set()).update({key, f"{branch.name}/{key}"})
    unused = []
    for group in _KEYED_GROUPS:
        texts: dict[str, str] = getattr(translation, group)
        unused += [f"{group}.{key}" for key in texts if key not in wanted.get(group, set())]
    notes = sum(isinstance(e, km.Note) for b in rule.branches for e in b.effects)
    if len(translation.notes) > notes:
        unused.append(f"notes ({len(translation.notes)} given, {notes} in the rule)")
    return unused


def english_digest(rule: km.Rule) -> str:
    """Eight hex digits of sha256 over every English text a translation of the rule replaces:
    title, rationale, each keyed text (`<group>.<key>` or `<group>.<branch>/<key>`, sorted) and
    the notes in order (they are translated by position). Whitespace is normalised, so
    re-folding a YAML line changes nothing; any change of wording changes the digest."""
    keyed = {("title", rule.title), ("rationale", rule.rationale)}
    notes = []
    for branch in rule.branches:
        for group, key, text in _translatable(branch.effects):
            keyed.add((f"{group}.{branch.name}/{key}" if branch.name else f"{group}.{key}", text))
        notes += [effect.note for effect in branch.effects if isinstance(effect, km.Note)]
    texts = [[key, " ".join(text.split())] for key, text in sorted(keyed)]
    texts += [["notes", " ".join(note.split())] for note in notes]
    canonical = json.dumps(texts, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:8]


def _varying_keys(rule: km.Rule) -> set[tuple[str, str]]:
    """The (group, key) pairs whose English text differs from one branch to another."""
    english: dict[tuple[str, str], set[str]] = {}
    for branch in rule.branches:
        for group, key, text in _translatable(branch.effects):
            english.setdefault((group, key), set()).add(text)
    return {pair for pair, texts in english.items() if len(texts) > 1}


def _translatable(effects: Iterable[Any]) -> list[tuple[str, str, str]]:
    """Each translatable text of these effects as (group, key, English text)."""
    keys: list[tuple[str, str, str]] = []
    for effect in effects:
        if isinstance(effect, km.Caution):
            keys.append(("cautions", effect.caution, effect.text))
        elif isinstance(effect, km.Contraindicate):
            keys += [("reasons", option, effect.reason) for option in effect.contraindicate]
        elif isinstance(effect, km.Request):
            keys += [("requests", field, effect.reason) for field in effect.request]
        elif isinstance(effect, km.Context):
            keys.append(("context", effect.context, effect.text))
        elif isinstance(effect, km.Adjust):
            keys.append(("adjustments", effect.adjust, effect.reason))
        if isinstance(effect, km.Propose | km.Adjust):
            keys += _dose_texts(effect)
    return keys


def _dose_texts(effect: km.Propose | km.Adjust) -> list[tuple[str, str, str]]:
    option = effect.propose if isinstance(effect, km.Propose) else effect.adjust
    keys = [("doses", option, effect.dose.text)] if effect.dose else []
    keys += [("schedules", option, effect.schedule.text)] if effect.schedule else []
    if isinstance(effect, km.Propose) and effect.text:
        keys.append(("texts", option, effect.text))
    return keys


def show_value(value: Any, unit: str, words: Mapping[str, str]) -> str:
    """A patient value in a sentence: yes/no for a flag, a list joined (or "none"), a number with
    its unit, in the language of `words`."""
    if value is None:
        return words["unknown"]
    if isinstance(value, bool):
        return words["yes"] if value else words["no"]
    if isinstance(value, list):
        return ", ".join(str(item) for item in value) or words["none"]
    return f"{value} {unit}".strip()
