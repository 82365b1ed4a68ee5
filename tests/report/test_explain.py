"""explain.py re-reads conditions with its own three-valued evaluator to show a clinician why a
rule fired or did not; durable_rules decides what fires. The two must agree: on random condition
trees and random patients, a rule fires exactly when the evaluator says its condition is met."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from bonecds import evaluate, load_knowledge
from bonecds.api import _facts
from bonecds.profile.model import parse_profile
from bonecds.report.explain import condition_status as three_valued
from tests.conftest import AS_OF, RULES

SITES = ["breast", "prostate", "myeloma", "gctb"]
RISKS = ["smoking", "poor_hygiene", "head_neck_rt"]
NUMBERS = {"ecog": st.integers(0, 4), "age_years": st.integers(15, 90)}
NUMBERS_FLOAT = {"weight_kg": st.sampled_from([40, 55.5, 70, 70.0, 90])}

numbers = st.sampled_from([*NUMBERS, *NUMBERS_FLOAT])
number_value = st.one_of(st.integers(0, 95), st.sampled_from([2.5, 55.5, 70.0]))
number_test = st.builds(
    lambda field, op, value: {"field": field, op: value},
    numbers,
    st.sampled_from(["eq", "ne", "lt", "lte", "gt", "gte"]),
    number_value,
) | st.builds(
    lambda field, op, values: {"field": field, op: values},
    numbers,
    st.sampled_from(["in", "not_in"]),
    st.lists(st.integers(0, 90), min_size=1, max_size=3, unique=True),
)
field_ref_test = st.builds(
    lambda left, op, right: {"field": left, op: {"field": right}},
    numbers,
    st.sampled_from(["lt", "gte", "eq"]),
    numbers,
)
site_test = st.builds(
    lambda op, value: {"field": "primary.site", op: value},
    st.sampled_from(["eq", "ne"]),
    st.sampled_from(SITES),
) | st.builds(
    lambda op, values: {"field": "primary.site", op: values},
    st.sampled_from(["in", "not_in"]),
    st.lists(st.sampled_from(SITES), min_size=1, max_size=2, unique=True),
)
bool_test = st.builds(
    lambda field, op, value: {"field": field, op: value},
    st.sampled_from(["pregnant", "bone.metastases_present"]),
    st.sampled_from(["eq", "ne"]),
    st.booleans(),
)
list_test = st.builds(
    lambda op, value: {"field": "dental.risk_factors", op: value},
    st.sampled_from(["contains", "not_contains"]),
    st.sampled_from(RISKS),
)
known_test = st.builds(
    lambda field, known: {"field": field, "known": known},
    st.sampled_from(["ecog", "primary.site", "pregnant", "dental.risk_factors"]),
    st.booleans(),
)
leaves = number_test | field_ref_test | site_test | bool_test | list_test | known_test
conditions = st.recursive(
    leaves,
    lambda inner: (
        st.builds(lambda items: {"all": items}, st.lists(inner, min_size=2, max_size=3))
        | st.builds(lambda items: {"any": items}, st.lists(inner, min_size=2, max_size=3))
        | st.builds(lambda item: {"not": item}, inner)
    ),
    max_leaves=6,
)


def _maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.none() | strategy


profiles = st.builds(
    lambda ecog, age, weight, site, pregnant, mets, risks: {
        key: value
        for key, value in {
            "ecog": ecog,
            "age_years": age,
            "weight_kg": weight,
            "primary": {"site": site} if site else None,
            "pregnant": pregnant,
            "bone": {"metastases_present": mets} if mets is not None else None,
            "dental": {"risk_factors": risks} if risks is not None else None,
        }.items()
        if value is not None
    },
    _maybe(NUMBERS["ecog"]),
    _maybe(NUMBERS["age_years"]),
    _maybe(NUMBERS_FLOAT["weight_kg"]),
    _maybe(st.sampled_from(SITES)),
    _maybe(st.booleans()),
    _maybe(st.booleans()),
    _maybe(st.lists(st.sampled_from(RISKS), max_size=2, unique=True)),
)


def _knowledge_base(root: Path, trees: list[dict[str, Any]]) -> Path:
    """The project's settings, sources and vocabulary, and one note rule per tree."""
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir()
    for name in ("settings.yaml", "sources.yaml", "vocabulary.yaml"):
        shutil.copy(RULES / name, root / name)
    rules = [
        {
            "id": f"tree-{index}",
            "version": 1,
            "status": "draft",
            "title": f"tree {index}",
            "kind": "note",
            "when": tree,
            "effects": [{"note": f"tree {index}"}],
            "rationale": "A random condition tree.",
            "citations": [{"source": "R3"}],
            "translations": {"zh": {"title": "测试", "rationale": "测试。", "notes": ["测试"]}},
        }
        for index, tree in enumerate(trees)
    ]
    data = json.loads(json.dumps({"section": "T", "title": "trees", "rules": rules}))
    (root / "trees.yaml").write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return root


@settings(
    max_examples=8,
    derandomize=True,
    deadline=None,
    # No shrinking: each step would compile a knowledge base (minutes); the message names the
    # tree and the patient instead.
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    trees=st.lists(conditions, min_size=25, max_size=25),
    patients=st.lists(profiles, min_size=25, max_size=25),
)
def test_the_engine_fires_exactly_the_rules_the_explanation_calls_met(
    trees: list[dict[str, Any]], patients: list[dict[str, Any]], tmp_path: Path
) -> None:
    knowledge = load_knowledge(_knowledge_base(tmp_path / "rules", trees))
    for raw in patients:
        profile = parse_profile(raw)
        values = _facts(profile, knowledge).values
        fired = {line.rule for line in evaluate(profile, knowledge, AS_OF).rules_fired}
        for rule in knowledge.base.rules:
            status = three_valued(rule.when, values, set())
            agree = (rule.id in fired) == (status == "met")
            assert agree, f"engine fired: {rule.id in fired}; explain: {status}; {rule.when}; {raw}"
