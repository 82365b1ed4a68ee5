"""A profile value given as a bound ("less than 6 months") is never read as exact.

facts.py keeps a bounded value only where it decides every comparison the rules make on its
field as the recorded number does; otherwise the field is unknown (requested, option conditional).
"""

from __future__ import annotations

import operator

from hypothesis import given, settings
from hypothesis import strategies as st

from bonecds import Knowledge
from bonecds.engine.facts import to_facts
from bonecds.knowledge.model import FieldTest, ReferenceDefaults
from bonecds.profile.model import parse_profile

_DEFAULTS = ReferenceDefaults(8.9, 10.5, 4.69, 5.21)
_OPS = {"gt": operator.gt, "gte": operator.ge, "lt": operator.lt, "lte": operator.le}


def _life_expectancy(
    months: float, bound: str | None, tests: tuple[FieldTest, ...] | None
) -> float | None:
    profile = parse_profile({"life_expectancy_months": months, "life_expectancy_bound": bound})
    comparisons = None if tests is None else {"life_expectancy_months": tests}
    value = to_facts(profile, _DEFAULTS, comparisons).values.get("life_expectancy_months")
    return None if value is None else float(value)


def test_less_than_6_cannot_show_at_least_3() -> None:
    at_least_3 = (FieldTest("life_expectancy_months", "gte", 3),)
    assert _life_expectancy(6, "less_than", at_least_3) is None


def test_more_than_12_shows_at_least_3() -> None:
    tests = (
        FieldTest("life_expectancy_months", "gte", 3),
        FieldTest("life_expectancy_months", "lt", 6),
    )
    assert _life_expectancy(12, "more_than", tests) == 12


def test_exact_and_unstated_bounds_are_exact() -> None:
    tests = (FieldTest("life_expectancy_months", "gte", 3),)
    assert _life_expectancy(2, "exact", tests) == 2
    assert _life_expectancy(2, None, tests) == 2


def test_a_bound_judged_against_no_rules_is_unknown() -> None:
    assert _life_expectancy(12, "more_than", None) is None


def test_the_knowledge_base_lists_the_life_expectancy_thresholds(knowledge: Knowledge) -> None:
    tests = knowledge.base.comparisons["life_expectancy_months"]
    assert {(test.op, test.value) for test in tests} >= {("gte", 3), ("lt", 3), ("gte", 6)}


@settings(max_examples=200, derandomize=True, deadline=None)
@given(
    recorded=st.integers(0, 24),
    bound=st.sampled_from(["more_than", "less_than"]),
    op=st.sampled_from(sorted(_OPS)),
    limit=st.integers(0, 24),
    offset=st.sampled_from([0.01, 0.5, 1, 7]),
)
def test_a_kept_bound_gives_every_possible_true_value_the_same_answer(
    recorded: int, bound: str, op: str, limit: int, offset: float
) -> None:
    kept = _life_expectancy(recorded, bound, (FieldTest("life_expectancy_months", op, limit),))
    true_value = recorded + offset if bound == "more_than" else max(recorded - offset, 0)
    if kept is not None and (bound == "more_than" or recorded > 0):
        compare = _OPS[op]
        assert compare(kept, limit) == compare(true_value, limit)
