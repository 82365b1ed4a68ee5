"""The benchmark floor fires exactly what durable_rules fires and reads patterns as it does."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from benchmarks.floor import Floor, compile_expression

from bonecds import Knowledge, api
from bonecds.api import evaluate_data
from bonecds.engine.compile import CompiledRule
from bonecds.engine.durable import run_engine
from bonecds.engine.facts import Facts, to_facts
from bonecds.engine.firing import Firing
from bonecds.knowledge.model import ReferenceDefaults
from bonecds.profile.model import parse_profile
from bonecds.testing.scenarios import load_scenario
from bonecds.testing.synthetic import synthetic_cohort
from tests.conftest import AS_OF, FIXTURES


def _facts(knowledge: Knowledge, profiles: list[dict[str, Any]]) -> list[Facts]:
    defaults = ReferenceDefaults(**knowledge.base.defaults)
    return [to_facts(parse_profile(profile), defaults) for profile in profiles]


# Sparse, default and dense profiles: unknown-value alternatives and the joins both get used.
@pytest.mark.parametrize(("known", "size"), [(0.3, 600), (0.7, 2000), (0.95, 600)])
def test_floor_fires_what_the_engine_fires(knowledge: Knowledge, known: float, size: int) -> None:
    floor = Floor(knowledge)
    facts = _facts(knowledge, synthetic_cohort(size, seed=31, known=known))
    mismatched = [i for i, f in enumerate(facts) if floor.firings(f) != run_engine(knowledge, f)]
    assert mismatched == []
    # The comparison means something only if many rules, joins and negations fired.
    fired = {firing.rule_id for f in facts for firing in floor.firings(f)}
    assert len(fired) > len({rule.rule_id for rule in knowledge.rules}) // 2


def test_floor_matches_the_engine_on_every_fixture(knowledge: Knowledge) -> None:
    floor = Floor(knowledge)
    defaults = ReferenceDefaults(**knowledge.base.defaults)
    paths = sorted(Path(FIXTURES).glob("*.yaml"))
    for path in paths:
        facts = to_facts(load_scenario(path)[1], defaults, knowledge.base.comparisons)
        assert floor.firings(facts) == run_engine(knowledge, facts), path.name
    assert len(paths) > 20


@pytest.mark.parametrize(
    ("expression", "fact", "expected"),
    [
        ({"a": 1}, {"a": 1}, True),
        ({"a": 1}, {}, False),
        # A comparison on a missing field never matches in durable_rules, $neq included.
        ({"$neq": {"a": 1}}, {}, False),
        ({"$neq": {"a": 1}}, {"a": 2}, True),
        ({"$lt": {"a": 5}}, {"a": 4.5}, True),
        ({"$gte": {"a": 5}}, {"a": 4.5}, False),
        ({"$ex": {"a": 1}}, {"a": False}, True),
        ({"$nex": {"a": 1}}, {"a": False}, False),
        # A missing *referenced* field matches (the compiler guards it with $ex).
        ({"$lt": {"b": {"$m": "a"}}}, {"b": 3}, True),
        ({"$lt": {"b": {"$m": "a"}}}, {"b": 3, "a": 2}, False),
        ({"$and": [{"t": "p"}, {"$or": [{"x": "1a"}, {"x": "2"}]}]}, {"t": "p", "x": "2"}, True),
        ({"$and": [{"t": "p"}, {"$or": [{"x": "1a"}, {"x": "2"}]}]}, {"t": "p", "x": "3"}, False),
        ({"t": "o", "n": "sbrt"}, {"t": "o", "n": "sbrt"}, True),
        ({"t": "o", "n": "sbrt"}, {"t": "o", "n": "ebrt"}, False),
    ],
)
def test_expressions_follow_durable_rules(
    expression: dict[str, Any], fact: dict[str, Any], expected: bool
) -> None:
    assert compile_expression(expression)(fact) is expected


@pytest.mark.parametrize(
    "expression", [{"$regex": {"a": "x"}}, {"a": [1, 2]}, {"$lt": {"a": {"$m": 3}}}]
)
def test_unknown_constructs_are_refused(expression: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"floor|key"):
        compile_expression(expression)


def _rule(
    name: str, pattern: list[dict[str, Any]], produces: tuple[dict[str, Any], ...] = ()
) -> Any:
    return CompiledRule(name, name, "", (int(name[1:]), 0), {"all": pattern}, produces, (), ())


def _toy(knowledge: Knowledge) -> Knowledge:
    """r0 derives x when ECOG > 1; r1 fires on x; r2 fires when x is absent, in stratum 1."""
    patient = {"p": {"$and": [{"t": "p"}, {"$gt": {"ecog": 1}}]}}
    anyone = {"p": {"t": "p"}}
    rules = (
        _rule("r0", [patient], ({"t": "d", "n": "x"},)),
        _rule("r1", [anyone, {"j0": {"$and": [{"t": "d"}, {"n": "x"}]}}]),
        _rule(
            "r2",
            [
                anyone,
                {"ph": {"$and": [{"t": "ph"}, {"n": 1}]}},
                {"x0$not": {"$and": [{"t": "d"}, {"n": "x"}]}},
            ],
        ),
    )
    return Knowledge("bonecds_floor_toy", rules, 1, knowledge.base)


@pytest.mark.parametrize(("ecog", "expected"), [(2, ["r0", "r1"]), (1, ["r2"]), (None, ["r2"])])
def test_joins_and_stratified_negation(
    knowledge: Knowledge, ecog: int | None, expected: list[str]
) -> None:
    toy = _toy(knowledge)
    facts = Facts({} if ecog is None else {"ecog": ecog}, ())
    assert [firing.rule_id for firing in Floor(toy).firings(facts)] == expected
    assert [firing.rule_id for firing in run_engine(toy, facts)] == expected


def test_firings_carry_what_ranking_needs(
    knowledge: Knowledge, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The floor is a baseline for whole evaluations: its firings, put through the report path
    in place of the engine's, must give the engine's reports, conditional fields included."""
    floor = Floor(knowledge)
    cohort = synthetic_cohort(50, seed=3)
    expected = [evaluate_data(profile, knowledge, AS_OF) for profile in cohort]
    assumed: list[Firing] = []

    def floor_engine(compiled: Knowledge, facts: Facts) -> list[Firing]:
        firings = floor.firings(facts)
        assumed.extend(firing for firing in firings if firing.assumes)
        return firings

    monkeypatch.setattr(api, "run_engine", floor_engine)
    assert [evaluate_data(profile, knowledge, AS_OF) for profile in cohort] == expected
    assert assumed  # the cohort exercised firings that assume an unknown needed field
