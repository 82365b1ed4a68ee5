"""Logic lint of a knowledge base: warnings with stable codes at `file:line`.

    never-fires          a rule or branch whose conditions contradict each other (or the
                         field's range), so it can never fire
    out-of-range         a threshold outside the values a field can take (the test always or
                         never holds)
    unstated-precedence  an option proposed by one rule and contraindicated by another under
                         conditions that can hold together, where the contraindicating rule
                         does not test for the option (so which should win is not stated)
    threshold-gap        branches of one rule that split a number into bands leave values
    threshold-overlap    uncovered, or cover some twice (e.g. CrCl dosing bands)
    subsumed-branch      a branch that fires only when another branch of its rule fires too
    unused-id            a vocabulary id that no rule uses
    unused-waiver        a waiver in lint-waivers.yaml that no longer matches a warning

Method: interval reasoning over the condition trees. Each condition is put in disjunctive
normal form (bounded: larger trees are skipped, never guessed), and each conjunction is
reduced to, per field, an interval (open or closed ends, integer fields stepping by one), a set
of allowed and excluded values, and whether the field must be known. That is exact for what
the rules use (comparisons with constants, in/not_in, contains, known) and needs no solver
dependency; tests of another rule's output (`option:`, `derived:`) and field-to-field
comparisons are kept as opaque atoms, which can only make the lint say less, never wrongly.

Unknown is not false (rules/README.md): a negated test holds only for a known value, and
"B implies A" is checked with A's complement including "A's field is unknown".
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from bonecds.errors import Diagnostic
from bonecds.knowledge._checks import option_tests, used_ids
from bonecds.knowledge._source import Reader
from bonecds.knowledge.model import (
    NEGATED,
    All,
    Any_,
    Condition,
    Contraindicate,
    Derived,
    FieldRef,
    FieldTest,
    KnowledgeBase,
    Not,
    Proposed,
    Rule,
)
from bonecds.profile.fields import FIELDS
from bonecds.profile.model import PatientProfile
from bonecds.profile.plausibility import RANGES, unwrap

__all__ = ["Domain", "field_domain", "lint_knowledge"]

WAIVERS_FILE = "lint-waivers.yaml"
MAX_CONJUNCTIONS = 512  # a larger normal form is not analysed (no false warnings either)

Atom = tuple[str, str, bool]  # (kind, name, holds): an opaque test and its polarity
Literal = FieldTest | Atom
Conjunction = tuple[Literal, ...]


class _TooLarge(Exception):
    """The normal form would exceed MAX_CONJUNCTIONS."""


def lint_knowledge(knowledge: KnowledgeBase) -> list[Diagnostic]:
    """Every logic warning of a loaded knowledge base, less those waived in lint-waivers.yaml."""
    rules = [rule for rule in knowledge.rules if rule.active]
    found = [
        *_never_fires(rules),
        *_out_of_range(rules),
        *_unstated_precedence(rules),
        *_threshold_series(rules),
        *_subsumed_branches(rules),
        *_unused_ids(knowledge, rules),
    ]
    return _apply_waivers(found, Path(knowledge.directory) / WAIVERS_FILE)


def _warning(code: str, message: str, rule: Rule, line: int) -> Diagnostic:
    return Diagnostic(code, message, rule.file, line or rule.line, 0, rule.id, "", "warning")


# ---- normal form ------------------------------------------------------------------------


def _dnf(
    condition: Condition | None, negate: bool = False, complement: bool = False
) -> list[Conjunction]:
    """Disjunctive normal form. `negate` pushes a `not` down: a negated field test holds only
    for a known value, unless `complement` asks for the logical complement (then "unknown"
    is one more way for the test to fail)."""
    if condition is None:
        return [()]
    if isinstance(condition, Not):
        return _dnf(condition.item, not negate, complement)
    if isinstance(condition, All | Any_):
        conjunctive = isinstance(condition, All) != negate
        parts = [_dnf(item, negate, complement) for item in condition.items]
        if not conjunctive:
            return _bounded([conj for part in parts for conj in part])
        result: list[Conjunction] = [()]
        for part in parts:
            result = _bounded([a + b for a in result for b in part])
        return result
    if isinstance(condition, Proposed | Derived):
        kind = "option" if isinstance(condition, Proposed) else "derived"
        name = condition.option if isinstance(condition, Proposed) else condition.name
        if isinstance(condition, Proposed) and condition.purposes:
            name += "/" + ",".join(sorted(condition.purposes))
        return [((kind, name, not negate),)]
    assert isinstance(condition, FieldTest)
    if isinstance(condition.value, FieldRef):
        text = f"{condition.field} {condition.op} {condition.value.field}"
        return [(("compare", text, not negate),)]
    if not negate:
        return [(condition,)]
    flipped = _negated(condition)
    if complement and condition.op != "known":
        return [(flipped,), (FieldTest(condition.field, "known", False, condition.line),)]
    return [(flipped,)]


def _negated(test: FieldTest) -> FieldTest:
    if test.op == "known":
        return FieldTest(test.field, "known", not test.value, test.line)
    return FieldTest(test.field, NEGATED[test.op], test.value, test.line)


def _bounded(conjunctions: list[Conjunction]) -> list[Conjunction]:
    if len(conjunctions) > MAX_CONJUNCTIONS:
        raise _TooLarge
    return conjunctions


def _forms(*conditions: Condition | None) -> list[Conjunction] | None:
    """The normal form of the conjunction of `conditions`, or None when too large."""
    try:
        return _dnf(All(tuple(c for c in conditions if c is not None)))
    except _TooLarge:
        return None


# ---- field domains and satisfiability ---------------------------------------------------


@dataclass(frozen=True)
class Domain:
    """The values a number field can take: [low, high], integers only or not."""

    low: float = -math.inf
    high: float = math.inf
    integer: bool = False


def field_domain(path: str) -> Domain:
    """From the plausible ranges every profile is checked against (plausibility.RANGES) and
    the field's type (int or float); derived values and canonical-unit laboratory values are
    non-negative."""
    spec = FIELDS[path]
    if path.endswith(".count"):
        return Domain(0, math.inf, True)
    if spec.input_path != path:
        return Domain(0, math.inf, False)
    model: type[BaseModel] = PatientProfile
    info = None
    for part in path.split("."):
        info = model.model_fields[part]
        inner = unwrap(info.annotation)
        if isinstance(inner, type) and issubclass(inner, BaseModel):
            model = inner
    assert info is not None
    limits = RANGES.get(path)
    low = limits.low if limits else -math.inf
    high = limits.high if limits and limits.high is not None else math.inf
    return Domain(low, high, unwrap(info.annotation) is int)


@dataclass
class _Bounds:
    """What one conjunction says about one field."""

    low: float = -math.inf
    low_closed: bool = True
    high: float = math.inf
    high_closed: bool = True
    allowed: set[Any] | None = None
    excluded: set[Any] = field(default_factory=set)
    contains: set[Any] = field(default_factory=set)
    lacks: set[Any] = field(default_factory=set)
    known: bool | None = None
    valued: bool = False  # some test needs a value

    def add(self, test: FieldTest) -> None:
        op, value = test.op, test.value
        if op == "known":
            self.known = bool(value) if self.known is None or self.known == bool(value) else None
            if self.known is None:  # known and unknown at once
                self.allowed = set()
            return
        self.valued = True
        if op in ("lt", "lte"):
            closed = op == "lte"
            if value < self.high or (value == self.high and not closed):
                self.high, self.high_closed = value, closed
        elif op in ("gt", "gte"):
            closed = op == "gte"
            if value > self.low or (value == self.low and not closed):
                self.low, self.low_closed = value, closed
        elif op in ("eq", "in"):
            values = set(value) if op == "in" else {value}
            self.allowed = values if self.allowed is None else self.allowed & values
        elif op in ("ne", "not_in"):
            self.excluded |= set(value) if op == "not_in" else {value}
        elif op == "contains":
            self.contains.add(value)
        elif op == "not_contains":
            self.lacks.add(value)

    def possible(self, path: str) -> bool:
        if self.known is False and self.valued:
            return False
        if self.contains & self.lacks:
            return False
        spec = FIELDS[path]
        if spec.type == "number":
            return self._number_possible(field_domain(path))
        universe: set[Any] | None = {True, False} if spec.type == "bool" else None
        if spec.type == "enum":
            universe = set(spec.values)
        allowed = self.allowed if self.allowed is not None else universe
        return allowed is None or bool(allowed - self.excluded)

    def _number_possible(self, domain: Domain) -> bool:
        low, low_closed = max((self.low, self.low_closed), (domain.low, True))
        high, high_closed = min((self.high, self.high_closed), (domain.high, True))
        if self.allowed is not None:
            return any(
                self._inside(v, low, low_closed, high, high_closed)
                and (not domain.integer or float(v).is_integer())
                for v in self.allowed - self.excluded
            )
        if domain.integer:
            if not math.isfinite(low):
                return low < high  # unbounded below: more integers than exclusions
            first = int(low) if low_closed and float(low).is_integer() else math.floor(low) + 1
            return any(
                self._inside(v, low, low_closed, high, high_closed) and v not in self.excluded
                for v in range(first, first + len(self.excluded) + 1)
            )
        if low < high:
            return True
        return low == high and low_closed and high_closed and low not in self.excluded

    @staticmethod
    def _inside(value: float, low: float, lc: bool, high: float, hc: bool) -> bool:
        return (value > low or (lc and value == low)) and (value < high or (hc and value == high))


def _possible(conjunction: Conjunction) -> bool:
    """Whether some patient (known values in their ranges) satisfies every literal."""
    atoms = {literal for literal in conjunction if isinstance(literal, tuple)}
    if any((kind, name, not holds) in atoms for kind, name, holds in atoms):
        return False
    bounds: dict[str, _Bounds] = {}
    for literal in conjunction:
        if isinstance(literal, FieldTest):
            bounds.setdefault(literal.field, _Bounds()).add(literal)
    return all(b.possible(path) for path, b in bounds.items())


def _satisfiable(*conditions: Condition | None) -> bool | None:
    forms = _forms(*conditions)
    return None if forms is None else any(_possible(c) for c in forms)


def _implies(condition: Condition, other: Condition) -> bool:
    """Whether `condition` holds only where `other` holds (for known and unknown values)."""
    try:
        negation = _dnf(other, negate=True, complement=True)
        forms = _dnf(condition)
        products = _bounded([a + b for a in forms for b in negation])
    except _TooLarge:
        return False
    return not any(_possible(c) for c in products)


# ---- the checks -------------------------------------------------------------------------


def _never_fires(rules: list[Rule]) -> list[Diagnostic]:
    found = []
    for rule in rules:
        if _satisfiable(rule.when) is False:
            message = "this rule can never fire: its conditions contradict each other"
            found.append(_warning("never-fires", message, rule, rule.line))
            continue
        for branch in rule.branches:
            if branch.when is not None and _satisfiable(rule.when, branch.when) is False:
                message = (
                    f"branch '{branch.name}' can never fire: "
                    "it contradicts the rule's condition or itself"
                )
                found.append(_warning("never-fires", message, rule, branch.line))
    return found


def _leaves(condition: Condition | None) -> list[FieldTest]:
    if isinstance(condition, FieldTest):
        return [condition]
    if isinstance(condition, All | Any_):
        return [leaf for item in condition.items for leaf in _leaves(item)]
    if isinstance(condition, Not):
        return _leaves(condition.item)
    return []


def _out_of_range(rules: list[Rule]) -> list[Diagnostic]:
    found = []
    for rule in rules:
        for branch_when in [rule.when, *(b.when for b in rule.branches)]:
            for leaf in _leaves(branch_when):
                problem = _range_problem(leaf)
                if problem:
                    found.append(_warning("out-of-range", problem, rule, leaf.line))
    return found


def _range_problem(test: FieldTest) -> str:
    if FIELDS[test.field].type != "number" or test.op == "known":
        return ""
    if isinstance(test.value, FieldRef):
        return ""
    domain = field_domain(test.field)
    values = test.value if isinstance(test.value, list) else [test.value]
    outside = [v for v in values if not domain.low <= v <= domain.high]
    if not outside:
        return ""
    span = f"{_number(domain.low)} to {_number(domain.high)}"
    return f"{test.field} takes values from {span}; {_number(outside[0])} is outside that range"


def _number(value: float) -> str:
    if math.isinf(value):
        return "-inf" if value < 0 else "inf"
    return str(int(value)) if float(value).is_integer() else str(value)


def _proposals(rules: list[Rule]) -> list[tuple[Rule, Any, str]]:
    return [
        (rule, branch, effect.propose)
        for rule in rules
        for branch in rule.branches
        for effect in branch.effects
        if hasattr(effect, "propose")
    ]


def _unstated_precedence(rules: list[Rule]) -> list[Diagnostic]:
    found = []
    proposals = _proposals(rules)
    for rule in rules:
        for branch in rule.branches:
            tested = option_tests(rule.when) | option_tests(branch.when)
            blocked = [
                option
                for effect in branch.effects
                if isinstance(effect, Contraindicate)
                for option in effect.contraindicate
                if option not in tested
            ]
            for option in dict.fromkeys(blocked):
                for other, other_branch, proposed in proposals:
                    if proposed != option or other.id == rule.id:
                        continue
                    if _satisfiable(rule.when, branch.when, other.when, other_branch.when):
                        message = (
                            f"'{option}' is proposed by {other.id} ({Path(other.file).name}:"
                            f"{other_branch.line or other.line}) under conditions that can hold "
                            "with this contraindication; test {option: " + option + "} here "
                            "to state that the contraindication is meant to win, or waive it"
                        )
                        found.append(_warning("unstated-precedence", message, rule, branch.line))
                        break
    return found


def _band(branch_when: Condition | None, path: str) -> tuple[_Bounds, Domain] | None:
    """The interval a branch's own condition puts on a number field, if it is one interval."""
    forms = _forms(branch_when)
    if forms is None or len(forms) != 1:
        return None
    tests = [lit for lit in forms[0] if isinstance(lit, FieldTest) and lit.field == path]
    if not tests or any(t.op not in ("lt", "lte", "gt", "gte") for t in tests):
        return None
    bounds = _Bounds()
    for test in tests:
        bounds.add(test)
    return bounds, field_domain(path)


def _threshold_series(rules: list[Rule]) -> list[Diagnostic]:
    found = []
    for rule in rules:
        named = [b for b in rule.branches if b.when is not None]
        paths = dict.fromkeys(
            leaf.field
            for b in named
            for leaf in _leaves(b.when)
            if FIELDS[leaf.field].type == "number" and not isinstance(leaf.value, FieldRef)
        )
        for path in paths:
            bands = [(b, _band(b.when, path)) for b in named]
            series = [(b, band[0]) for b, band in bands if band is not None]
            if len({_interval(bounds) for _, bounds in series}) >= 2:
                found.extend(_series_problems(rule, path, series))
    return found


def _interval(bounds: _Bounds) -> tuple[float, bool, float, bool]:
    return (bounds.low, bounds.low_closed, bounds.high, bounds.high_closed)


def _series_problems(rule: Rule, path: str, series: list[tuple[Any, _Bounds]]) -> list[Diagnostic]:
    """Bands in order of their lower end; branches that repeat one band (the same band with
    other conditions) are one step of the series."""
    domain = field_domain(path)
    distinct = {_interval(bounds): (branch, bounds) for branch, bounds in reversed(series)}
    ordered = sorted(distinct.values(), key=lambda item: (item[1].low, not item[1].low_closed))
    found = []
    for (before, a), (after, b) in itertools.pairwise(ordered):
        where = f"branches '{before.name}' and '{after.name}' on {path}"
        nested = _interval(a) == _interval(_hull(a, b)) or _interval(b) == _interval(_hull(a, b))
        if nested:
            continue  # one band inside another is not a series (subsumed-branch may apply)
        if a.high > b.low or (a.high == b.low and a.high_closed and b.low_closed):
            message = (
                f"{where} overlap: {_number(b.low)} to {_number(min(a.high, b.high))} is in both"
            )
            found.append(_warning("threshold-overlap", message, rule, after.line))
        elif _gap(a, b, domain):
            message = f"{where} leave a gap between {_number(a.high)} and {_number(b.low)}"
            found.append(_warning("threshold-gap", message, rule, after.line))
    return found


def _hull(a: _Bounds, b: _Bounds) -> _Bounds:
    low, low_closed = min((a.low, not a.low_closed), (b.low, not b.low_closed))
    high, high_closed = max((a.high, a.high_closed), (b.high, b.high_closed))
    return _Bounds(low, not low_closed, high, high_closed)


def _gap(a: _Bounds, b: _Bounds, domain: Domain) -> bool:
    if domain.integer:
        last = a.high if a.high_closed else a.high - 1
        first = b.low if b.low_closed else b.low + 1
        return math.ceil(first) > math.floor(last) + 1
    return a.high < b.low or (a.high == b.low and not a.high_closed and not b.low_closed)


def _subsumed_branches(rules: list[Rule]) -> list[Diagnostic]:
    found = []
    for rule in rules:
        named = [b for b in rule.branches if b.when is not None]
        for branch in named:
            for other in named:
                if other is branch or not _effect_ids(branch) & _effect_ids(other):
                    continue
                if not _implies(branch.when, other.when):  # type: ignore[arg-type]
                    continue
                if _implies(other.when, branch.when) and named.index(other) > named.index(branch):  # type: ignore[arg-type]
                    continue  # equal conditions: reported once, at the later branch
                shared = ", ".join(sorted(_effect_ids(branch) & _effect_ids(other)))
                message = (
                    f"branch '{branch.name}' fires only when branch '{other.name}' fires too, "
                    f"and both act on {shared}"
                )
                found.append(_warning("subsumed-branch", message, rule, branch.line))
                break
    return found


def _effect_ids(branch: Any) -> set[str]:
    """The ids a branch's effects act on (an option adjusted, a caution raised...)."""
    found: set[str] = set()
    for effect in branch.effects:
        data = effect.model_dump()
        for key in ("propose", "adjust", "caution", "context", "derive"):
            if key in data:
                found.add(f"{key} {data[key]}")
        found.update(f"contraindicate {item}" for item in data.get("contraindicate", []))
        found.update(f"request {item}" for item in data.get("request", []))
    return found


def _unused_ids(knowledge: KnowledgeBase, rules: list[Rule]) -> list[Diagnostic]:
    used = used_ids(knowledge)
    unused = [name for name in knowledge.vocabulary if name not in used]
    if not unused:
        return []
    path = Path(knowledge.directory) / "vocabulary.yaml"
    reader = Reader(path, [])
    return [
        Diagnostic(
            "unused-id",
            f"'{name}' ({knowledge.vocabulary[name].kind}) is used by no rule",
            str(path),
            reader.doc.position(("vocabulary", name))[0],
            0,
            "",
            "",
            "warning",
        )
        for name in unused
    ]


# ---- waivers ----------------------------------------------------------------------------


class Waiver(BaseModel):
    """A warning accepted on purpose: its code, the rule (or id) it concerns, and why."""

    model_config = {"extra": "forbid"}

    code: str
    rule: str = ""
    about: str = ""  # a text the warning's message must contain (an option id, a field)
    reason: str


def _apply_waivers(found: list[Diagnostic], path: Path) -> list[Diagnostic]:
    if not path.exists():
        return found
    problems: list[Diagnostic] = []
    reader = Reader(path, problems)
    raw = reader.doc.data.get("waivers", []) if isinstance(reader.doc.data, dict) else None
    if not isinstance(raw, list):
        reader.report("invalid-value", "a waivers file holds 'waivers: [...]'")
        return [*problems, *found]
    kept = list(found)
    for index, item in enumerate(raw):
        waiver = reader.validate(Waiver, item, ("waivers", index))
        if waiver is None:
            continue
        if not waiver.reason.strip():
            reader.report("invalid-value", "a waiver must say why", ("waivers", index, "reason"))
        matched = [d for d in kept if _waives(waiver, d)]
        if not matched:
            line = reader.doc.position(("waivers", index))[0]
            message = (
                f"waiver of {waiver.code} for '{waiver.rule or waiver.about}' matches no warning"
            )
            problems.append(
                Diagnostic("unused-waiver", message, str(path), line, 0, "", "", "warning")
            )
        kept = [d for d in kept if d not in matched]
    return [*problems, *kept]


def _waives(waiver: Waiver, diagnostic: Diagnostic) -> bool:
    return (
        waiver.code == diagnostic.code
        and (not waiver.rule or waiver.rule == diagnostic.rule_id)
        and waiver.about in diagnostic.message
    )
