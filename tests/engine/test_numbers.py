"""Every finite number reaches durable_rules in a form its JSON reader takes, with the floor's
decisions (issue 11 item 4): facts, derived values and rule constants alike.

durable_rules' reader (rules/json.c getNumber) accepts an exponent only after a fraction: `1e-06`
and `1e+16`, which Python and orjson write for such floats, fail to parse; it reads integers
with atoll (64 bits)."""

from __future__ import annotations

import math
from typing import Any

import pytest
from benchmarks.floor import Floor

from bonecds import Knowledge, evaluate
from bonecds.engine.compile import CompiledRule, _leaf
from bonecds.engine.durable import run_engine
from bonecds.engine.facts import Facts, to_facts
from bonecds.errors import InputError, InternalError
from bonecds.knowledge.model import FieldTest, ReferenceDefaults
from bonecds.profile.fields import FIELDS
from bonecds.profile.model import ANALYTE_UNITS, QUANTITY_FIELDS, parse_profile
from bonecds.profile.plausibility import RANGES
from tests.conftest import AS_OF

# Every float format boundary: orjson and repr switch to exponents below 1e-4 and from 1e16;
# integers beyond 2**53 are inexact as doubles and beyond 2**63 overflow durable's atoll.
EXTREMES: tuple[float | int, ...] = (
    0,
    0.0,
    5e-324,
    1e-300,
    1e-7,
    1e-6,
    9.99e-6,
    0.000123,
    1e-4,
    0.5,
    1,
    1e15,
    1e16,
    1.5e16,
    1e300,
    1.7976931348623157e308,
    2**53 + 1,
    2**63,
    2**64 + 7,
    10**30,
    10**400,
)
SIGNED = (*EXTREMES, *(-value for value in EXTREMES if value))

# A patient every derived value is computed for (CrCl by Cockcroft-Gault, corrected calcium).
BASE: dict[str, Any] = {
    "age_years": 60,
    "sex": "female",
    "weight_kg": 70,
    "primary": {"site": "breast"},
    "bone": {"metastases_present": True},
    "labs": {
        "scr": {"value": 1.0, "unit": "mg/dL"},
        "calcium_total": {"value": 10.0, "unit": "mg/dL"},
        "albumin": {"value": 3.5, "unit": "g/dL"},
    },
}


def _profile_inputs() -> list[tuple[str, list[str]]]:
    """Each numeric profile input, from the field table (fields added later are covered),
    with the units a quantity may carry (none for a plain number)."""
    inputs: dict[str, list[str]] = {}
    for spec in FIELDS.values():
        if (
            spec.type != "number"
            or spec.path.startswith("derived.")
            or spec.path.endswith(".count")
        ):
            continue
        inputs[spec.input_path] = _units(spec.input_path)
    return sorted(inputs.items())


def _units(input_path: str) -> list[str]:
    if input_path not in QUANTITY_FIELDS:
        return [""]
    return sorted(ANALYTE_UNITS[QUANTITY_FIELDS[input_path][0]])


def _with(profile: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    result = {key: dict(item) if isinstance(item, dict) else item for key, item in profile.items()}
    *parents, leaf = path.split(".")
    node = result
    for name in parents:
        node[name] = dict(node.get(name, {}))
        node = node[name]
    node[leaf] = value
    return result


CASES = [
    (path, unit, value)
    for path, units in _profile_inputs()
    for unit in units
    for value in SIGNED
    if not isinstance(value, int) or abs(value) < 10**300  # pydantic refuses 10**400 itself
]


def test_the_cases_cover_every_numeric_profile_field() -> None:
    covered = {path for path, _, _ in CASES}
    assert "drivers.pdl1_tps_pct" in covered
    assert "labs.calcium_total" in covered
    assert len(covered) >= 20


def test_every_numeric_field_at_its_extremes_evaluates_as_the_floor_does_or_is_refused(
    knowledge: Knowledge,
) -> None:
    floor = Floor(knowledge)
    defaults = ReferenceDefaults(**knowledge.base.defaults)
    evaluated = refused = 0
    for path, unit, value in CASES:
        raw = {"value": value, "unit": unit} if unit else value
        profile = _with(BASE, path, raw)
        try:
            report = evaluate(profile, knowledge, AS_OF)
        except InputError:
            refused += 1
            continue
        except InternalError as error:  # pragma: no cover - the failure this test guards
            pytest.fail(f"{path}={value!r} {unit}: {error}")
        facts = to_facts(parse_profile(profile), defaults)
        assert run_engine(knowledge, facts) == floor.firings(facts), (path, value, unit)
        assert report.rules_fired, (path, value, unit)
        evaluated += 1
    # The extremes within their plausible ranges (the rest are refused by design) did reach
    # the engine: the ranges leave this test something to check.
    plausible = sum(_plausible(path, unit, value) for path, unit, value in CASES)
    assert evaluated > plausible // 2


def _plausible(path: str, unit: str, value: float) -> bool:
    factor = ANALYTE_UNITS[QUANTITY_FIELDS[path][0]][unit] if unit else 1.0
    try:
        canonical = float(value) * factor
    except OverflowError:
        return False
    return math.isfinite(canonical) and RANGES[path].holds(canonical)


@pytest.mark.parametrize("value", [value for value in SIGNED if value != 10**400])
def test_any_finite_number_the_engine_receives_gives_the_floors_firings(
    knowledge: Knowledge, value: float
) -> None:
    # Below the profile's validation: every numeric fact key at once, derived values included.
    defaults = ReferenceDefaults(**knowledge.base.defaults)
    base = to_facts(parse_profile(BASE), defaults).values
    numeric = [spec.path for spec in FIELDS.values() if spec.type == "number"]
    floor = Floor(knowledge)
    for keys in [[path] for path in numeric] + [numeric]:
        facts = Facts({**base, **dict.fromkeys(keys, value)}, ())
        assert run_engine(knowledge, facts) == floor.firings(facts), (keys, value)


def test_a_number_beyond_every_double_reaches_the_engine_in_order(knowledge: Knowledge) -> None:
    facts = Facts({"age_years": 10**400, "labs.crcl_ml_min": -(10**400)}, ())
    assert run_engine(knowledge, facts) == Floor(knowledge).firings(facts)


def _toy_rule(index: int, test: FieldTest) -> CompiledRule:
    patient = {"p": {"$and": [{"t": "p"}, _leaf(test, set())]}}
    return CompiledRule(f"r{index}", f"r{index}", "", (index, 0), {"all": [patient]}, (), (), ())


@pytest.mark.parametrize("constant", [c for c in SIGNED if abs(c) < 10**300 or c == 0])
def test_rule_constants_of_any_size_compile_and_compare_as_the_floor_does(
    knowledge: Knowledge, constant: float
) -> None:
    ops = ("eq", "ne", "lt", "lte", "gt", "gte")
    rules = tuple(_toy_rule(i, FieldTest("age_years", op, constant)) for i, op in enumerate(ops))
    rules += (_toy_rule(len(rules), FieldTest("age_years", "in", [constant, 3])),)
    toy = Knowledge(
        f"bonecds_numbers_{len(rules)}_{constant!r}".replace(".", "_")
        .replace("-", "m")
        .replace("+", "p"),
        rules,
        0,
        knowledge.base,
    )
    floor = Floor(toy)
    for value in SIGNED:
        facts = Facts({"age_years": value}, ())
        assert run_engine(toy, facts) == floor.firings(facts), (constant, value)
    fired = {f.rule_id for f in run_engine(toy, Facts({"age_years": constant}, ()))}
    assert {"r0", "r6"} <= fired  # equal to itself, in its own list


def test_quantity_conversion_beyond_every_double_is_refused_naming_the_field(
    knowledge: Knowledge,
) -> None:
    huge = {"value": 1.7e308, "unit": "mmol/L"}  # x 4.008 to mg/dL overflows
    with pytest.raises(InputError, match=r"labs\.calcium_total"):
        evaluate(_with(BASE, "labs.calcium_total", huge), knowledge, AS_OF)


def test_a_derived_value_beyond_every_double_is_refused_naming_its_inputs(
    knowledge: Knowledge,
) -> None:
    # Cockcroft-Gault (140 - age) x weight / (72 x SCr) from finite values validation would
    # refuse (model_copy does not validate): the engine side must still never see infinity.
    profile = parse_profile(BASE).model_copy(update={"weight_kg": 1.7e308, "age_years": 0.0})
    defaults = ReferenceDefaults(**knowledge.base.defaults)
    with pytest.raises(InputError, match=r"weight_kg.*derived\.crcl_ml_min"):
        to_facts(profile, defaults)


@pytest.mark.parametrize("value", [float("inf"), float("-inf"), float("nan")])
def test_a_non_finite_number_reaching_the_engine_is_named_as_such(
    knowledge: Knowledge, value: float
) -> None:
    # Validation and facts.py refuse these first; the engine still says what went wrong.
    with pytest.raises(InternalError, match="not finite"):
        run_engine(knowledge, Facts({"age_years": value}, ()))
    assert run_engine(knowledge, Facts({"age_years": 50}, ())) == run_engine(
        knowledge, Facts({"age_years": 50}, ())
    )


def test_text_that_is_not_unicode_is_refused_naming_its_field(knowledge: Knowledge) -> None:
    # A lone surrogate (e.g. "\ud800" in JSON) cannot be written as UTF-8 for durable_rules.
    facts = Facts({"primary.histology": "adeno\ud800carcinoma", "age_years": 50}, ())
    with pytest.raises(InputError, match=r"^primary\.histology: "):
        run_engine(knowledge, facts)
    same = Facts({"primary.histology": "adenocarcinoma é \x00 \"'\\", "age_years": 50}, ())
    assert run_engine(knowledge, same) == Floor(knowledge).firings(same)
