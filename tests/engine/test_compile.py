"""The compiler's assumptions about durable_rules, pinned, and its handling of engine limits."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import durable.engine as durable
import pytest
import yaml

from bonecds import evaluate, load_knowledge
from bonecds.engine.compile import (
    MAX_OPERATORS_PER_PATTERN,
    MAX_RULES_PER_RULESET,
    _operators,
    partition_rules,
)
from tests.conftest import AS_OF, RULES


class _Host(durable.Host):  # type: ignore[misc]
    def _run(self) -> None:
        pass


HOST = _Host()


def _fires(name: str, expression: dict[str, Any], fact: dict[str, Any]) -> bool:
    fired: list[int] = []
    sentinel = {"all": [{"p": {"t": "p"}}], "run": lambda c: None}  # see engine.py
    rules = {"r": {"all": [{"p": expression}], "run": lambda c: fired.append(1)}, "s": sentinel}
    HOST.set_rulesets({name: rules})
    try:
        HOST.assert_fact(name, {"sid": "1", "t": "p", **fact})
    except durable.MessageNotHandledException:
        pass
    finally:
        HOST.delete_state(name, "1")
    return bool(fired)


@pytest.mark.parametrize(
    "expression",
    [
        {"x": 1},
        {"x": False},
        {"$neq": {"x": 1}},
        {"$lt": {"x": 1}},
        {"$lte": {"x": 1}},
        {"$gt": {"x": 1}},
        {"$gte": {"x": 1}},
    ],
    ids=["eq", "eq-false", "neq", "lt", "lte", "gt", "gte"],
)
def test_constant_comparison_on_a_missing_field_never_matches(expression: dict[str, Any]) -> None:
    # The compiler relies on this to treat unknown as "not met" without extra guards.
    name = f"missing_{abs(hash(str(expression)))}"
    assert not _fires(name, {"$and": [{"t": "p"}, expression]}, {"y": 0})


def test_field_reference_to_a_missing_field_does_match_so_it_is_guarded() -> None:
    assert _fires("ref_missing", {"$and": [{"t": "p"}, {"$lt": {"a": {"$m": "b"}}}]}, {"a": 1})


def _ors(count: int) -> dict[str, Any]:
    items = [{"$or": [{"$lt": {f"f{i}": 5}}, {"$nex": {f"f{i}": 1}}]} for i in range(count)]
    return {"$and": [{"t": "p"}, *items]}


def test_operator_limit_is_where_the_compiler_thinks_it_is() -> None:
    fits = _ors(MAX_OPERATORS_PER_PATTERN - 1)
    assert _operators(fits) == MAX_OPERATORS_PER_PATTERN
    HOST.set_rulesets({"limit_ok": {"r": {"all": [{"p": fits}], "run": lambda c: None}}})
    with pytest.raises(Exception, match="113"):
        HOST.set_rulesets(
            {
                "limit_bad": {
                    "r": {"all": [{"p": _ors(MAX_OPERATORS_PER_PATTERN)}], "run": lambda c: None}
                }
            }
        )


def test_a_rule_beyond_the_limit_is_split_and_still_correct(tmp_path: Path) -> None:
    for name in ("settings.yaml", "sources.yaml", "vocabulary.yaml"):
        shutil.copy(RULES / name, tmp_path / name)
    needs = [
        "ecog",
        "life_expectancy_months",
        "age_years",
        "weight_kg",
        "bone.lesion_count",
        "mets.total_lesion_count",
        "spine.sins",
        "long_bone.mirels",
        "labs.crcl_ml_min",
        "labs.alp_u_l",
        "labs.cea_ng_ml",
        "meds.bma_months",
        "dental.days_since_invasive_procedure",
        "neuro.paraplegia_hours",
        "drivers.pdl1_tps_pct",
        "meds.bma_interval_weeks",
    ]
    rule = {
        "id": "many-needs",
        "version": 1,
        "status": "draft",
        "title": "Many needed values",
        "kind": "option",
        "needs": needs,
        "when": {"all": [{"field": name, "gte": 0} for name in needs]},
        "effects": [{"propose": "sbrt", "score": 50, "purpose": "test"}],
        "rationale": "test",
        "citations": [{"source": "R27"}],
    }
    (tmp_path / "many.yaml").write_text(yaml.safe_dump({"rules": [rule]}), encoding="utf-8")
    knowledge = load_knowledge(tmp_path)
    assert len(knowledge.rules) > 1
    assert all(
        _operators(r.pattern["all"][0]) <= MAX_OPERATORS_PER_PATTERN for r in knowledge.rules
    )
    report = evaluate({"ecog": 1, "age_years": 50}, knowledge, AS_OF)
    (item,) = report.ranked
    assert set(item.conditional_on) == set(needs) - {"ecog", "age_years"} | {"labs.crcl_ml_min"}
    assert evaluate({"ecog": -0 + 1, "age_years": 50, "weight_kg": 70}, knowledge, AS_OF).ranked


def test_project_rules_fit_every_engine_limit() -> None:
    knowledge = load_knowledge(RULES)
    assert all(
        _operators(r.pattern["all"][0]) <= MAX_OPERATORS_PER_PATTERN for r in knowledge.rules
    )
    parts = partition_rules(knowledge.rules)
    assert all(len(part) < MAX_RULES_PER_RULESET for part in parts)
