"""The knowledge-base models: rules, their conditions and effects, sources and vocabulary.

A condition is a small tree: `all` / `any` / `not` over leaves. A leaf tests one profile field
(`{field: ecog, lte: 1}`), or asks whether another rule proposed an option
(`{option: zoledronic-acid}`) or derived a fact (`{derived: mscc-active}`). Missing values are
*unknown*: a leaf on an unknown field is false, unless the field is listed in `needs`, in which
case the rule still fires and its result is marked conditional on that field.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from bonecds.errors import Diagnostic

__all__ = [
    "COMPARISONS",
    "EFFECT_KEYS",
    "LEAF_OPERATORS",
    "NEGATED",
    "Adjust",
    "All",
    "Any_",
    "Branch",
    "Caution",
    "Citation",
    "Condition",
    "Context",
    "Contraindicate",
    "Derive",
    "Derived",
    "Dose",
    "Effect",
    "FieldRef",
    "FieldTest",
    "KnowledgeBase",
    "Not",
    "Note",
    "Propose",
    "Proposed",
    "ReferenceDefaults",
    "Request",
    "Rule",
    "RuleKind",
    "Schedule",
    "Source",
    "Translation",
    "VocabularyItem",
]

COMPARISONS = ("eq", "ne", "lt", "lte", "gt", "gte")
LEAF_OPERATORS = (*COMPARISONS, "in", "not_in", "contains", "not_contains", "known")
NEGATED = {
    "eq": "ne",
    "ne": "eq",
    "lt": "gte",
    "gte": "lt",
    "gt": "lte",
    "lte": "gt",
    "in": "not_in",
    "not_in": "in",
    "contains": "not_contains",
    "not_contains": "contains",
}


@dataclass(frozen=True)
class FieldRef:
    """The right-hand side of a comparison that names another field instead of a constant."""

    field: str


@dataclass(frozen=True)
class FieldTest:
    """`field op value`; op `known` tests presence (value True) or absence (value False)."""

    field: str
    op: str
    value: Any
    line: int = dataclasses.field(default=0, compare=False)  # `field` is taken above


@dataclass(frozen=True)
class Proposed:
    """True when another rule proposed `option` (optionally for one of `purposes`)."""

    option: str
    purposes: tuple[str, ...] = ()
    line: int = field(default=0, compare=False)


@dataclass(frozen=True)
class Derived:
    """True when another rule derived the named fact."""

    name: str
    line: int = field(default=0, compare=False)


@dataclass(frozen=True)
class All:
    items: tuple[Condition, ...]


@dataclass(frozen=True)
class Any_:
    items: tuple[Condition, ...]


@dataclass(frozen=True)
class Not:
    item: Condition


Condition = FieldTest | Proposed | Derived | All | Any_ | Not


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


class Citation(_Model):
    source: str
    locator: str = ""


class Dose(_Model):
    amount: float | None = None
    unit: str = "mg"
    route: str = ""
    text: str


class Schedule(_Model):
    interval_weeks: float | None = None
    text: str


class Propose(_Model):
    """Propose an option or emergency; its label and kind come from the vocabulary."""

    propose: str
    kind: Literal["emergency", "option"] | None = None  # default: the vocabulary's kind
    score: int = Field(ge=0, le=100)
    purpose: str
    strength: str = ""
    dose: Dose | None = None
    schedule: Schedule | None = None
    text: str = ""


class Contraindicate(_Model):
    contraindicate: list[str] = Field(min_length=1)
    reason: str


class Caution(_Model):
    caution: str
    text: str
    applies_to: list[str] = Field(default_factory=lambda: ["patient"])


class Request(_Model):
    request: list[str] = Field(min_length=1)
    reason: str
    gates: list[str] = Field(default_factory=list)
    urgent: bool = False


class Derive(_Model):
    derive: str


class Note(_Model):
    note: str
    applies_to: list[str] = Field(default_factory=lambda: ["patient"])


class Context(_Model):
    context: str
    text: str


class Adjust(_Model):
    """Change a proposed option: its dose, schedule or score (the reason is shown)."""

    adjust: str
    reason: str
    score: int | None = Field(default=None, ge=0, le=100)
    dose: Dose | None = None
    schedule: Schedule | None = None


Effect = Propose | Contraindicate | Caution | Request | Derive | Note | Context | Adjust
EFFECT_KEYS: dict[str, type[_Model]] = {
    "propose": Propose,
    "contraindicate": Contraindicate,
    "caution": Caution,
    "request": Request,
    "derive": Derive,
    "note": Note,
    "context": Context,
    "adjust": Adjust,
}


class Translation(_Model):
    """A rule's texts in another language; keys name the effect whose text they replace."""

    title: str
    rationale: str
    cautions: dict[str, str] = Field(default_factory=dict)  # caution id -> text
    reasons: dict[str, str] = Field(default_factory=dict)  # contraindicated option id -> reason
    requests: dict[str, str] = Field(default_factory=dict)  # requested field -> reason
    notes: list[str] = Field(default_factory=list)  # in the order of the rule's note effects
    context: dict[str, str] = Field(default_factory=dict)  # context id -> text
    adjustments: dict[str, str] = Field(default_factory=dict)  # adjusted option id -> reason
    doses: dict[str, str] = Field(default_factory=dict)  # proposed/adjusted option id -> dose text
    schedules: dict[str, str] = Field(default_factory=dict)  # option id -> schedule text
    texts: dict[str, str] = Field(default_factory=dict)  # proposed option id -> its text
    # citation source key -> locator ("R57#2": the rule's second citation of R57)
    locators: dict[str, str] = Field(default_factory=dict)
    # The digest of the English these texts translate (i18n.english_digest); `bonecds rules
    # check` reports the translation as stale when the English no longer gives it.
    en_digest: str | None = Field(None, pattern=r"^[0-9a-f]{8}$")


RuleKind = Literal[
    "emergency",
    "option",
    "contraindication",
    "caution",
    "data-request",
    "derived",
    "note",
    "context",
]


@dataclass(frozen=True)
class Branch:
    """One alternative of a rule: fires when the rule's and the branch's conditions hold."""

    name: str
    when: Condition | None
    needs: tuple[str, ...]
    effects: tuple[Effect, ...]
    line: int = field(default=0, compare=False)


@dataclass(frozen=True)
class Rule:
    """A rule as loaded: metadata, condition, effects, and where it was written."""

    id: str
    version: int
    status: str
    title: str
    kind: str
    catalogue: str
    when: Condition
    needs: tuple[str, ...]
    branches: tuple[Branch, ...]
    rationale: str
    evidence: str
    citations: tuple[Citation, ...]
    file: str
    line: int = 1
    translations: dict[str, Translation] = field(default_factory=dict)

    @property
    def active(self) -> bool:
        return self.status != "retired"

    def condition(self, branch: Branch) -> Condition:
        """When `branch` fires: the rule's condition and the branch's own, if it has one."""
        return self.when if branch.when is None else All((self.when, branch.when))


class Source(_Model):
    """A bibliography entry of `rules/sources.yaml`."""

    title: str
    kind: Literal["review", "guideline", "label", "trial", "study", "reference"]
    file: str = ""
    url: str = ""


class VocabularyItem(_Model):
    label: str
    kind: Literal["emergency", "option", "caution", "context"]
    label_zh: str = ""


@dataclass(frozen=True)
class KnowledgeBase:
    """Everything loaded from a rules directory, validated and ready to compile."""

    rules: tuple[Rule, ...]
    sources: dict[str, Source]
    vocabulary: dict[str, VocabularyItem]
    version: str
    defaults: dict[str, float]
    directory: str
    lint: tuple[Diagnostic, ...] = ()
    digest: str = ""  # of the files' contents (digests.files_digest); reports carry it

    def rule(self, rule_id: str) -> Rule:
        return next(rule for rule in self.rules if rule.id == rule_id)

    def label(self, item_id: str) -> str:
        item = self.vocabulary.get(item_id)
        return item.label if item else item_id

    @cached_property
    def branch_reads(self) -> dict[tuple[int, int], tuple[str, ...]]:
        """Per (rule index, branch index): every field the branch reads (its rule's and its
        own conditions, then what they need), without repeats. Computed once: the report
        shows these values for every firing."""
        return {
            (rule_index, branch_index): tuple(
                dict.fromkeys(
                    (
                        *condition_fields(rule.when),
                        *condition_fields(branch.when),
                        *rule.needs,
                        *branch.needs,
                    )
                )
            )
            for rule_index, rule in enumerate(self.rules)
            for branch_index, branch in enumerate(rule.branches)
        }

    @cached_property
    def comparisons(self) -> dict[str, tuple[FieldTest, ...]]:
        """Per field path: every test the rules make on it other than `known` (on either side
        of the comparison). Computed once: a bounded profile value is judged against them."""
        found: dict[str, list[FieldTest]] = {}
        for rule in self.rules:
            conditions = [rule.when, *(branch.when for branch in rule.branches)]
            for test in (test for c in conditions for test in field_tests(c)):
                if test.op == "known":
                    continue
                found.setdefault(test.field, []).append(test)
                if isinstance(test.value, FieldRef):
                    found.setdefault(test.value.field, []).append(test)
        return {path: tuple(tests) for path, tests in found.items()}

    @cached_property
    def report_memo(self) -> dict[Any, Any]:
        """Parts of reports the report builder (report/rank.py) made for this knowledge base and
        may reuse for the next patient; it bounds the size."""
        return {}

    def __getstate__(self) -> dict[str, Any]:
        """Pickled (to the cache, to batch workers) without the report memo: it belongs to
        this process, and would only make every worker's copy larger."""
        state = dict(self.__dict__)
        state.pop("report_memo", None)
        return state


def condition_fields(condition: Condition | None) -> list[str]:
    """Every field path a condition reads, in order of appearance, without repeats."""
    found: list[str] = []
    for test in field_tests(condition):
        found.append(test.field)
        if isinstance(test.value, FieldRef):
            found.append(test.value.field)
    return list(dict.fromkeys(found))


def field_tests(condition: Condition | None) -> list[FieldTest]:
    """Every field test in a condition, in order of appearance."""
    found: list[FieldTest] = []

    def walk(node: Condition | None) -> None:
        if isinstance(node, FieldTest):
            found.append(node)
        elif isinstance(node, All | Any_):
            for item in node.items:
                walk(item)
        elif isinstance(node, Not):
            walk(node.item)

    walk(condition)
    return found


@dataclass(frozen=True)
class ReferenceDefaults:
    """Calcium reference limits used when the laboratory gives none (knowledge-base settings)."""

    calcium_lln_mg_dl: float
    calcium_uln_mg_dl: float
    calcium_ionised_lln_mg_dl: float
    calcium_ionised_uln_mg_dl: float
