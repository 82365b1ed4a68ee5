"""The benchmark floor: the *compiled* rules evaluated in plain Python, without durable_rules.

It reads the same `CompiledRule.pattern` dicts the engine registers and gives the same firings
(`Firing`, as `engine.run_engine` returns them), so the benchmark compares like with like: the
cost of the rules engine against the least any evaluator of these patterns must do. It is a
yardstick and a cross-check, never the decision engine (bonecds.evaluate always uses durable).

Semantics copied from durable_rules 2.0.28 (measured in tests/engine/test_floor.py and the probes of
docs/durable-rules-notes.md):
- a pattern is `{"all": [{alias: expression}, ...]}`; an alias ending in `$not` holds when *no*
  fact matches, any other when *some* fact does (no cross-fact references are compiled, so each
  element is matched on its own);
- `$and`/`$or` nest; `{key: value}` is equality; `$neq`/`$lt`/`$lte`/`$gt`/`$gte` compare;
  `$ex`/`$nex` test presence; a comparison on a missing key never matches, *including* `$neq`;
- `{"$m": key}` compares with another field of the same fact and, like durable_rules, *matches*
  when that field is missing (the compiler guards such tests with `$ex`);
- phase facts (`t: ph`, n = 1..max stratum) are asserted one after another once everything
  below has run to completion; produced facts are merged when identical.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bonecds.engine.compile import CompiledRule, Knowledge
from bonecds.engine.durable import encode_facts
from bonecds.engine.facts import Facts
from bonecds.engine.firing import Firing

Fact = dict[str, Any]
Predicate = Callable[[Fact], bool]

_OPERATORS = {"$neq": "!=", "$lt": "<", "$lte": "<=", "$gt": ">", "$gte": ">="}
# Constants are written into generated source with repr(): only plain JSON scalars qualify.
_SCALARS = (str, int, float, bool)


def compile_expression(expression: dict[str, Any]) -> Predicate:
    """One durable_rules expression (a dict) -> a predicate on one fact.

    The expression becomes one Python boolean expression, compiled once: this keeps the floor
    a floor (a tree of closures costs several times more per test than the engine's C code).
    """
    predicate: Predicate = eval(f"lambda f: {expression_source(expression)}", {})
    return predicate


def expression_source(expression: dict[str, Any]) -> str:
    """Python source of an expression over the fact `f` (a dict); names and constants are
    written with repr(), and only scalars are accepted, so nothing else reaches the source."""
    terms = [_term_source(key, value) for key, value in expression.items()]
    return terms[0] if len(terms) == 1 else "(" + " and ".join(terms) + ")"


def _term_source(key: str, value: Any) -> str:
    if key in ("$and", "$or"):
        joiner = " and " if key == "$and" else " or "
        return "(" + joiner.join(expression_source(item) for item in value) + ")"
    if key in ("$ex", "$nex"):
        (name,) = value
        return f"({_name(name)} {'in' if key == '$ex' else 'not in'} f)"
    if key in _OPERATORS:
        ((name, operand),) = value.items()
        return _comparison_source(name, _OPERATORS[key], operand)
    if key.startswith("$"):
        raise ValueError(f"the floor does not interpret the operator {key}")
    return _comparison_source(key, "==", value)


def _comparison_source(name: str, operator: str, operand: Any) -> str:
    left = _name(name)
    # A comparison on a missing field never matches in durable_rules, `$neq` included.
    if isinstance(operand, dict):
        (reference,) = operand.values()  # {"$m": other_key}
        right = _name(reference)
        # ... but a missing *referenced* field matches (the compiler guards it with `$ex`).
        return f"({right} not in f or ({left} in f and f[{left}] {operator} f[{right}]))"
    if not isinstance(operand, _SCALARS):
        raise ValueError(f"the floor compares only with scalars, not {type(operand).__name__}")
    return f"({left} in f and f[{left}] {operator} {operand!r})"


def _name(name: Any) -> str:
    if not isinstance(name, str):
        raise ValueError("a fact key must be a string")
    return repr(name)


@dataclass(frozen=True)
class _Element:
    """One join of a rule's `all`: which facts it can match, its test, and its polarity."""

    watch: tuple[Any, Any]  # (fact type, fact name); None where the pattern leaves it open
    test: Predicate
    negated: bool


@dataclass(frozen=True)
class _Rule:
    firing: Firing
    positives: tuple[_Element, ...]
    negatives: tuple[_Element, ...]
    produces: tuple[Fact, ...]


class Floor:
    """The compiled rules, ready to evaluate in plain Python.

    Matching is event-driven, as in a rules engine: the patient test of every rule runs once
    (one generated function for all of them), and each new fact (a produced option or derived
    fact, or a phase marker) is tried only on the joins that name its type and name.
    """

    def __init__(self, compiled: Knowledge) -> None:
        for rule in compiled.rules:
            _check_shape(rule)
        self.max_stratum = compiled.max_stratum
        sources = [expression_source(_patient_expression(rule)) for rule in compiled.rules]
        self._patient_tests: Callable[[Fact], tuple[bool, ...]] = eval(
            f"lambda f: ({', '.join(sources)},)", {}
        )
        self._rules = tuple(_compile_rule(rule) for rule in compiled.rules)
        self._plain = [i for i, rule in enumerate(self._rules) if not rule.positives]
        self._watchers: dict[tuple[Any, Any], list[tuple[int, int]]] = {}
        for index, compiled_rule in enumerate(self._rules):
            for position, element in enumerate(compiled_rule.positives):
                self._watchers.setdefault(element.watch, []).append((index, position))

    def firings(self, facts: Facts) -> list[Firing]:
        """The rule branches that fire for these facts, as `engine.run_engine` returns them."""
        return self.firings_of({"t": "p", **encode_facts(facts.values)})

    def firings_of(self, patient: Fact) -> list[Firing]:
        """The same for an already encoded patient fact."""
        live = self._patient_tests(patient)
        run = _Run(self, live)
        run.agenda = [index for index in self._plain if live[index]]
        run.drain()
        # Phase markers: everything below a stratum has run to completion before its marker.
        for phase in range(1, self.max_stratum + 1):
            run.add({"t": "ph", "n": phase})
            run.drain()
        return sorted(run.fired)


class _Run:
    """The working memory of one evaluation."""

    def __init__(self, floor: Floor, live: tuple[bool, ...]) -> None:
        self.floor, self.live = floor, live
        self.memory: dict[Any, list[Fact]] = {}
        self.seen: set[tuple[tuple[str, Any], ...]] = set()
        self.matched: dict[int, int] = {}
        self.agenda: list[int] = []
        self.fired: set[Firing] = set()

    def add(self, fact: Fact) -> None:
        # durable_rules identifies a fact by its content: an identical second one is merged.
        identity = tuple(sorted(fact.items()))
        if identity in self.seen:
            return
        self.seen.add(identity)
        kind = fact.get("t")
        self.memory.setdefault(kind, []).append(fact)
        rules, watchers = self.floor._rules, self.floor._watchers
        for watch in ((kind, fact.get("n")), (kind, None), (None, None)):
            for index, position in watchers.get(watch, ()):
                if self.live[index] and rules[index].positives[position].test(fact):
                    self._satisfy(index, position)

    def _satisfy(self, index: int, position: int) -> None:
        bit = 1 << position
        done = self.matched.get(index, 0)
        if not done & bit:
            done |= bit
            self.matched[index] = done
            if done == (1 << len(self.floor._rules[index].positives)) - 1:
                self.agenda.append(index)

    def drain(self) -> None:
        """Fire every rule whose positive joins all hold. Its negated joins are checked now,
        when the last positive arrives: by stratification nothing they test can appear later
        (and durable_rules would not withdraw the action if it did)."""
        while self.agenda:
            rule = self.floor._rules[self.agenda.pop()]
            if any(self._exists(element) for element in rule.negatives):
                continue
            self.fired.add(rule.firing)
            for fact in rule.produces:
                self.add(dict(fact))

    def _exists(self, element: _Element) -> bool:
        kind = element.watch[0]
        facts = self.memory.get(kind, []) if kind is not None else self._all()
        return any(element.test(fact) for fact in facts)

    def _all(self) -> list[Fact]:
        return [fact for facts in self.memory.values() for fact in facts]


def _check_shape(rule: CompiledRule) -> None:
    if set(rule.pattern) != {"all"}:
        raise ValueError(f"the floor interprets only 'all' patterns (rule {rule.name})")
    alias, expression = next(iter(rule.pattern["all"][0].items()))
    if alias.endswith("$not") or _watch(expression)[0] != "p":
        raise ValueError(f"rule {rule.name} does not start with the patient fact")


def _patient_expression(rule: CompiledRule) -> dict[str, Any]:
    expression: dict[str, Any] = next(iter(rule.pattern["all"][0].values()))
    return expression


def _compile_rule(rule: CompiledRule) -> _Rule:
    elements = [_compile_element(item) for item in rule.pattern["all"][1:]]
    firing = Firing(rule.order, rule.rule_id, rule.branch, rule.assumes, rule.tolerant)
    positives = tuple(element for element in elements if not element.negated)
    negatives = tuple(element for element in elements if element.negated)
    return _Rule(firing, positives, negatives, rule.produces)


def _compile_element(item: dict[str, Any]) -> _Element:
    ((alias, expression),) = item.items()
    return _Element(_watch(expression), compile_expression(expression), alias.endswith("$not"))


def _watch(expression: dict[str, Any]) -> tuple[Any, Any]:
    """The fact type (`t`) and name (`n`) an expression requires, where it fixes them."""
    terms = [expression, *expression.get("$and", ())]
    fixed = {key: term[key] for term in terms for key in ("t", "n") if key in term}
    return fixed.get("t"), fixed.get("n") if "t" in fixed else None
