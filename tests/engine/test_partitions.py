"""Knowledge bases beyond one durable_rules ruleset: the engine spreads the compiled rules over
as many rulesets as its limits need, derived facts crossing between them, with the firings the
floor (one working memory, no limits) gives."""

from __future__ import annotations

import dataclasses
import random
from typing import Any

import pytest
from benchmarks.common import scaled_knowledge
from benchmarks.floor import Floor

from bonecds import Knowledge
from bonecds.engine import compile as compiler
from bonecds.engine.compile import (
    MAX_JOINS_PER_FACT,
    MAX_PATIENT_KEYS,
    MAX_RULES_PER_RULESET,
    CompiledRule,
    compile_rules,
    partition_rules,
    patient_keys,
)
from bonecds.engine.durable import run_engine
from bonecds.engine.facts import Facts, to_facts
from bonecds.engine.firing import Firing
from bonecds.errors import RuleError
from bonecds.knowledge.load import load_rules
from bonecds.knowledge.model import ReferenceDefaults
from bonecds.profile.model import parse_profile
from bonecds.testing.synthetic import synthetic_cohort
from tests.conftest import RULES


def _facts(knowledge: Knowledge, size: int, seed: int) -> list[Facts]:
    defaults = ReferenceDefaults(**knowledge.base.defaults)
    cohort = synthetic_cohort(size, seed=seed, known=0.7)
    return [to_facts(parse_profile(profile), defaults) for profile in cohort]


def _renamed(compiled: Knowledge, suffix: str) -> Knowledge:
    # The engine registers rulesets by name once per process: a test's variant needs its own.
    return dataclasses.replace(compiled, ruleset_name=f"{compiled.ruleset_name}_{suffix}")


def _base(firing: Firing) -> tuple[str, str, tuple[str, ...], tuple[str, ...]]:
    return firing.rule_id.split("@")[0], firing.branch, firing.assumes, firing.tolerant


def test_a_knowledge_base_beyond_one_ruleset_fires_what_the_floor_fires(
    knowledge: Knowledge,
) -> None:
    scaled = compile_rules(scaled_knowledge(knowledge.base, 3))
    parts = partition_rules(scaled.rules)
    assert len(parts) >= 3
    floor, facts = Floor(scaled), _facts(knowledge, 120, seed=41)
    crossed = _crossing_joins(scaled, parts)
    fired_crossing = 0
    for item in facts:
        fired = run_engine(scaled, item)
        assert fired == floor.firings(item)
        # Every copy fires what the knowledge base it was made from fires.
        original = {_base(firing) for firing in run_engine(knowledge, item)}
        for copy in range(3):
            own = {_base(f) for f in fired if f.rule_id.endswith(f"@{copy}")}
            assert own == original, copy
        fired_crossing += sum(1 for firing in fired if firing.rule_id in crossed)
    assert fired_crossing > 0  # rules that joined on facts derived in another ruleset fired


def _crossing_joins(compiled: Knowledge, parts: tuple[tuple[int, ...], ...]) -> set[str]:
    """Ids of rules that join on a derived fact produced only in other rulesets."""
    where = {
        rule.name: index for index, part in enumerate(parts) for rule in _rules(compiled, part)
    }
    producers: dict[str, set[int]] = {}
    for rule in compiled.rules:
        for fact in rule.produces:
            if fact["t"] == "d":
                producers.setdefault(fact["n"], set()).add(where[rule.name])
    crossing = set()
    for rule in compiled.rules:
        for element in rule.pattern["all"][1:]:
            (expression,) = element.values()
            terms = expression.get("$and", [])
            names = [term["n"] for term in terms if "n" in term and {"t": "d"} in terms]
            if any(producers.get(name, set()) - {where[rule.name]} for name in names):
                crossing.add(rule.rule_id)
    return crossing


def _rules(compiled: Knowledge, part: tuple[int, ...]) -> list[CompiledRule]:
    return [compiled.rules[index] for index in part]


@pytest.mark.parametrize(
    ("limit", "value"),
    [("MAX_RULES_PER_RULESET", 30), ("MAX_JOINS_PER_FACT", 2), ("MAX_PATIENT_KEYS", 25)],
)
def test_each_per_ruleset_limit_splits_the_knowledge_base_with_the_same_firings(
    knowledge: Knowledge, monkeypatch: pytest.MonkeyPatch, limit: str, value: int
) -> None:
    monkeypatch.setattr(compiler, limit, value)
    parts = partition_rules(knowledge.rules)
    assert len(parts) > 2
    assert sorted(index for part in parts for index in part) == list(range(len(knowledge.rules)))
    for part in parts:
        rules = _rules(knowledge, part)
        assert len(rules) + 1 <= compiler.MAX_RULES_PER_RULESET  # the sentinel
        assert len(frozenset().union(*map(patient_keys, rules))) <= compiler.MAX_PATIENT_KEYS
        joins: dict[str, int] = {}
        for name in (compiler._join_names(rule) for rule in rules):
            for item in name:
                joins[item] = joins.get(item, 0) + 1
        assert max(joins.values(), default=0) <= compiler.MAX_JOINS_PER_FACT
    split = _renamed(knowledge, f"{limit}_{value}")
    floor = Floor(knowledge)
    for facts in _facts(knowledge, 150, seed=43):
        assert run_engine(split, facts) == floor.firings(facts)


def test_the_project_knowledge_base_needs_two_rulesets_today(knowledge: Knowledge) -> None:
    # Splitting costs an assert of the patient per ruleset. Knowledge 2026.12.1 (259 compiled
    # rules) went past one ruleset; a third would be another such cost: notice it here.
    assert len(partition_rules(knowledge.rules)) == 2
    assert (MAX_RULES_PER_RULESET, MAX_JOINS_PER_FACT, MAX_PATIENT_KEYS) == (250, 200, 240)


def _stratified(seed: int, size: int) -> Knowledge:
    """Random rules, each deriving its own fact and needing others present or absent, earlier
    or later in rule order (so in any ruleset), over several strata: the levels are drawn
    first, a rule negates only facts of lower levels, and its stratum is then computed as the
    compiler does."""
    rng = random.Random(seed)
    levels = [rng.randint(0, 4) for _ in range(size)]
    joins: list[tuple[list[int], list[int]]] = []
    for index, level in enumerate(levels):
        same_or_lower = [i for i, other in enumerate(levels) if other <= level and i != index]
        lower = [i for i in same_or_lower if levels[i] < level]
        positives = rng.sample(same_or_lower, min(len(same_or_lower), rng.randint(0, 2)))
        negatives = rng.sample(lower, min(len(lower), rng.randint(0, 2)))
        joins.append((positives, [i for i in negatives if i not in positives]))
    strata = [0] * size
    for _ in range(size + 1):  # the compiler's fixpoint
        strata = [
            max([strata[i] for i in pos] + [strata[i] + 1 for i in neg] + [0]) for pos, neg in joins
        ]
    rules = tuple(_random_rule(rng, index, strata[index], *joins[index]) for index in range(size))
    return Knowledge(f"bonecds_stratified_{seed}", rules, max(strata), None)  # type: ignore[arg-type]


def _random_rule(
    rng: random.Random, index: int, stratum: int, positives: list[int], negatives: list[int]
) -> CompiledRule:
    test = rng.choice([{"$gt": {"ecog": rng.randint(0, 3)}}, {"$lt": {"age_years": 70}}, {}])
    pattern: list[dict[str, Any]] = [{"p": {"$and": [{"t": "p"}, *([test] if test else [])]}}]
    derived = [{"$and": [{"t": "d"}, {"n": f"d{i}"}]} for i in (*positives, *negatives)]
    pattern += [{f"j{n}": item} for n, item in enumerate(derived[: len(positives)])]
    if negatives:
        pattern.append({"ph": {"$and": [{"t": "ph"}, {"n": stratum}]}})
    pattern += [{f"x{n}$not": item} for n, item in enumerate(derived[len(positives) :])]
    produces = ({"t": "d", "n": f"d{index}"},)
    return CompiledRule(
        f"r{index}", f"r{index}", "", (index, 0), {"all": pattern}, produces, (), ()
    )


@pytest.mark.parametrize("seed", range(6))
def test_stratified_negation_across_small_rulesets_fires_what_the_floor_fires(
    monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    monkeypatch.setattr(compiler, "MAX_RULES_PER_RULESET", 4)
    toy = _stratified(seed, 40)
    assert toy.max_stratum >= 3
    assert len(partition_rules(toy.rules)) >= 10
    floor = Floor(toy)
    for ecog in (None, 0, 1, 2, 3, 4):
        for age in (None, 50, 80):
            values = {k: v for k, v in (("ecog", ecog), ("age_years", age)) if v is not None}
            facts = Facts(values, ())
            assert run_engine(toy, facts) == floor.firings(facts), (seed, values)


def test_a_rule_wider_than_one_fact_is_still_an_engine_limit_naming_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(compiler, "MAX_PATIENT_KEYS", 3)
    with pytest.raises(RuleError) as raised:
        compile_rules(load_rules(RULES))
    (first, *_) = raised.value.diagnostics
    assert first.code == "engine-limit"
    assert first.file.endswith(".yaml")
    assert first.line > 1
    assert first.rule_id
    assert "patient fields in one rule" in first.message
