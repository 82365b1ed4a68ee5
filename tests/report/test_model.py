"""The Report model's canonical JSON: `to_json` writes with orjson, from the models, exactly the
text the json module writes from `to_data()`, and hands every value orjson would write
otherwise to the json module."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
from typing import Any

import pytest

from bonecds import Knowledge, Report, evaluate, why_not
from bonecds.report import model as report_model
from bonecds.report.model import CitationOut, PatientValue
from bonecds.testing.scenarios import load_scenario
from tests.conftest import AS_OF, FIXTURES, ScenarioReport


def _json_module(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


@pytest.mark.parametrize("language", ["en", "zh"])
def test_every_scenario_report_is_the_json_modules_text(
    language: str, scenario_report: ScenarioReport
) -> None:
    for path in sorted(FIXTURES.glob("*.yaml")):
        report = scenario_report(path, language)
        assert report.to_json() == _json_module(report.to_data()), path.name


def test_explanations_and_why_not_are_the_json_modules_text(knowledge: Knowledge) -> None:
    for path in sorted(FIXTURES.glob("*.yaml"))[:40]:
        scenario, profile = load_scenario(path)
        report = evaluate(profile, knowledge, scenario.as_of, explain=True, language="zh")
        assert report.explanations is not None
        assert report.to_json() == _json_module(report.to_data()), path.name
        answer = why_not(profile, knowledge, "sbrt", scenario.as_of)
        assert answer.to_json() == _json_module(answer.model_dump(mode="json")), path.name


def test_real_reports_never_need_the_json_module(
    monkeypatch: pytest.MonkeyPatch, knowledge: Knowledge, scenario_report: ScenarioReport
) -> None:
    """orjson writes every real report: one report model it is not told about sends each
    report to the json module, about 1.3 ms slower (it happened once, when the report's Dose
    became a subclass of the rule file's)."""
    monkeypatch.setattr(report_model, "json", None)  # the json module's way now fails
    for path in sorted(FIXTURES.glob("*.yaml")):
        for language in ("en", "zh"):
            scenario_report(path, language).to_json()
    for path in sorted(FIXTURES.glob("*.yaml"))[:40]:  # as the explanations test above
        scenario, profile = load_scenario(path)
        evaluate(profile, knowledge, scenario.as_of, explain=True).to_json()
        why_not(profile, knowledge, "sbrt", scenario.as_of).to_json()


class _Colour(str):
    pass


@dataclasses.dataclass
class _Point:
    x: float


class _CitedMore(CitationOut):
    page: int = 3


# Values orjson writes otherwise than the json module (floats in exponent form, NaN and
# Infinity, integers beyond 64 bits, lone surrogates, non-str keys, dates, subclasses) and
# values both write alike, in every field that can hold them.
ODD_VALUES = [
    1e-05,
    -1.5e-07,
    5e-324,
    0.0001,
    -0.0,
    1e16,
    1.2345678901234567e19,
    math.nan,
    math.inf,
    -math.inf,
    2**70,
    -(2**63),
    2**64 - 1,
    "\ud800",
    'tab\tnew\nline\x00\x1f\x7f\u2028 中文 "q" \\',
    (1, 2.5, "x"),
    [1e-05],
    {"a": 1e-07},
    {1: "int key"},
    {"b": 1, "a": [None, True]},
    dt.date(2026, 1, 2),
    dt.datetime(2026, 1, 2, 3, 4, tzinfo=dt.UTC),
    _Colour("red"),
    _Point(0.5),
    [[[]]],
    None,
]


@pytest.fixture(scope="module")
def sample(knowledge: Knowledge) -> Report:
    report = evaluate(
        {"primary": {"site": "breast"}, "bone": {"metastases_present": True}, "ecog": 1},
        knowledge,
        AS_OF,
        explain=True,
    )
    assert report.ranked
    assert report.derived
    assert report.explanations
    return report


@pytest.mark.parametrize("value", ODD_VALUES, ids=repr)
def test_odd_values_give_the_json_modules_text(sample: Report, value: Any) -> None:
    shown = PatientValue(field="labs.alp_u_l", value=value)
    first = sample.ranked[0]
    ranked = [first.model_copy(update={"patient_values": [shown]}), *sample.ranked[1:]]
    numeric = {"value": value} if value.__class__ in (int, float) else {}  # a float field
    derived = [sample.derived[0].model_copy(update={**numeric, "inputs": {"x": value}})]
    assert sample.explanations is not None  # the fixture checks it; mypy sees only the Optional
    condition = sample.explanations[0].conditions[0].model_copy(update={"value": value})
    explanation = sample.explanations[0].model_copy(update={"conditions": [condition]})
    for report in (
        sample.model_copy(update={"ranked": ranked}),
        sample.model_copy(update={"derived": derived}),
        sample.model_copy(update={"explanations": [explanation]}),
    ):
        try:
            expected = _json_module(report.to_data())
        except (TypeError, ValueError):  # the json module refuses it: so must to_json
            with pytest.raises((TypeError, ValueError)):
                report.to_json()
            continue
        assert report.to_json() == expected


def test_a_subclass_of_a_report_model_gives_the_json_modules_text(sample: Report) -> None:
    cited = _CitedMore(source="s", title="t")
    first = sample.ranked[0].model_copy(update={"citations": [cited]})
    report = sample.model_copy(update={"ranked": [first]})
    assert report.to_json() == _json_module(report.to_data())
