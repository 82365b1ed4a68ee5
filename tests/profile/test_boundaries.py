"""Issue 11: every profile input evaluates correctly or is refused in one clear line."""

from __future__ import annotations

import datetime as dt
import fnmatch
import json
import re
from typing import Any

import pytest

from bonecds import BonecdsError, ProfileError
from bonecds.api import evaluate, evaluate_data, load_knowledge
from bonecds.profile.model import PatientProfile, load_profile, parse_profile, read_structured
from bonecds.profile.plausibility import RANGES, numeric_fields
from tests.conftest import ROOT

DATE = dt.date(2026, 11, 23)


@pytest.fixture(scope="module")
def knowledge() -> Any:
    return load_knowledge("rules")


def read_and_parse(text: str) -> PatientProfile:
    data, doc = read_structured(text, "p.yaml")
    return parse_profile(data, "p.yaml", doc)


def problems_of(data: Any) -> list[str]:
    with pytest.raises(ProfileError) as caught:
        parse_profile(data)
    return caught.value.problems


# --- item 1: plausibility -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("labs", "field", "hint"),
    [
        ({"scr": {"value": 106, "unit": "mg/dL"}}, "labs.scr", "µmol/L"),
        ({"albumin": {"value": 36, "unit": "g/dL"}}, "labs.albumin", "g/L"),
        ({"calcium_total": {"value": 96, "unit": "mg/dL"}}, "labs.calcium_total", None),
        ({"scr": {"value": 0.01, "unit": "mg/dL"}}, "labs.scr", None),
        ({"albumin": "0.1 g/dL"}, "labs.albumin", None),
    ],
)
def test_implausible_lab_is_refused_naming_field_and_likely_unit(
    labs: dict[str, Any], field: str, hint: str | None
) -> None:
    problems = problems_of({"labs": labs})
    line = next(p for p in problems if f": {field}: " in p)
    assert "outside the plausible range" in line
    if hint:
        assert f"was the unit {hint}?" in line
    assert "106" not in line  # never echoes the patient value
    assert "36 " not in line


@pytest.mark.parametrize(
    ("labs", "accepted"),
    [
        # mmol/L is also calcium's unit: the analyte comes from the field, never the unit.
        ({"magnesium": {"value": 0.8, "unit": "mmol/L"}}, True),
        ({"phosphate": {"value": 7.0, "unit": "mmol/L"}}, True),  # 21.7 mg/dL; 28.1 as calcium
        ({"magnesium": {"value": 0.015, "unit": "mmol/L"}}, False),  # 0.036 mg/dL; 0.06 as calcium
    ],
)
def test_a_shared_unit_is_converted_with_its_fields_analyte(
    labs: dict[str, Any], accepted: bool
) -> None:
    if accepted:
        parse_profile({"labs": labs})
        return
    (line,) = problems_of({"labs": labs})
    assert "labs.magnesium: outside the plausible range" in line


def test_a_refused_magnesium_names_magnesium() -> None:
    (line,) = problems_of({"labs": {"magnesium": {"value": 0.01, "unit": "mg/dL"}}})
    assert "for magnesium" in line


def test_the_issue_examples_no_longer_contraindicate(knowledge: Any) -> None:
    patient = {"age_years": 60, "sex": "male", "weight_kg": 70}
    for labs in (
        {"scr": "106 mg/dL"},
        {"calcium_total": "2.3 mg/dL", "albumin": "36 g/dL"},
    ):
        with pytest.raises(ProfileError):
            evaluate({**patient, "labs": labs}, knowledge, DATE)


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"weight_kg": 1.0}, "weight_kg"),
        ({"weight_kg": 900}, "weight_kg"),
        ({"age_years": 123}, "age_years"),
        ({"labs": {"crcl_ml_min": 401}}, "labs.crcl_ml_min"),
        ({"drivers": {"pdl1_tps_pct": 101}}, "drivers.pdl1_tps_pct"),
        ({"meds": {"bma_dose_mg": 151}}, "meds.bma_dose_mg"),
        ({"meds": {"previous_bma": {"dose_mg": 4000}}}, "meds.previous_bma.dose_mg"),
        ({"meds": {"bma_interval_weeks": 105}}, "meds.bma_interval_weeks"),
        ({"labs": {"vitamin_d_25oh": "1001 ng/mL"}}, "labs.vitamin_d_25oh"),
        ({"labs": {"magnesium": "1001 mg/dL"}}, "labs.magnesium"),
    ],
)
def test_implausible_measurement_is_refused(data: dict[str, Any], field: str) -> None:
    line = next(p for p in problems_of(data) if f": {field}: " in p)
    assert "outside the plausible range" in line


@pytest.mark.parametrize(
    "data",
    [
        {"age_years": 122},  # the longest verified lifespan: 122 years 164 days
        {"meds": {"bma_interval_weeks": 104}},  # zoledronic acid 5 mg once every 2 years
        {"meds": {"bma_dose_mg": 150, "previous_bma": {"dose_mg": 120}}},  # ibandronic acid
        {"labs": {"vitamin_d_25oh": "1000 ng/mL", "magnesium": "20 mg/dL"}},
        {"labs": {"vitamin_d_25oh": "2 ng/mL", "scr": "20 mg/dL"}},  # deficiency; dialysis
        {"labs": {"alp_u_l": 8000, "cea_ng_ml": 20000}},  # no upper limit yet (review)
    ],
)
def test_real_extremes_stay_within_their_ranges(data: dict[str, Any]) -> None:
    parse_profile(data)


def _readme_range_rows() -> list[tuple[list[str], str]]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("### Input limits and plausible ranges")[1].split("\n### ")[0]
    rows = []
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0].startswith("`"):
            rows.append((re.findall(r"`([^`]+)`", cells[0]), cells[1]))
    return rows


def test_the_readme_table_states_each_range() -> None:
    # Every field the README names (a path, or a pattern such as `labs.calcium_*`) shows the
    # range RANGES has for it, and every bounded field is named.
    documented = set()
    for patterns, shown in _readme_range_rows():
        for path in (p for p in RANGES if any(fnmatch.fnmatchcase(p, x) for x in patterns)):
            documented.add(path)
            limits = RANGES[path]
            if limits.high is None:
                assert "no upper limit" in shown or "not negative" in shown, path
            else:
                high = f"{limits.high:g}"
                assert f"{limits.low:g}-{high}" in shown or f"up to {high}" in shown, path
    bounded = {path for path, r in RANGES.items() if r.high is not None}
    assert bounded - documented == set()


def test_a_model_built_directly_is_checked_too(knowledge: Any) -> None:
    profile = PatientProfile.model_validate({"weight_kg": 1000.0})
    with pytest.raises(ProfileError, match="weight_kg: outside the plausible range"):
        evaluate(profile, knowledge, DATE)
    with pytest.raises(ProfileError, match="weight_kg"):
        evaluate_data(profile, knowledge, DATE)


def test_every_numeric_field_has_one_range_with_a_source() -> None:
    missing = [path for path in numeric_fields() if path not in RANGES]
    assert missing == []
    assert all(r.source.strip() for r in RANGES.values())


def test_a_derived_value_is_never_negative(knowledge: Any) -> None:
    # in range one by one, together they would give a negative corrected calcium
    labs = {"calcium_total": "0.1 mg/dL", "albumin": "9 g/dL"}
    with pytest.raises(ProfileError) as caught:
        evaluate_data({"labs": labs}, knowledge, DATE)
    assert "derived.corrected_calcium_mg_dl" in str(caught.value)


# --- item 2: non-finite numbers -------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "labs:\n  calcium_total: {value: .inf, unit: mg/dL}\n",
        "labs:\n  calcium_total: {value: .nan, unit: mg/dL}\n",
        "age_years: -.inf\n",
        '{"labs": {"calcium_total": {"value": 1e999, "unit": "mg/dL"}}}',
        '{"labs": {"calcium_total": {"value": NaN, "unit": "mg/dL"}}}',
        '{"weight_kg": Infinity}',
        "labs:\n  calcium_total: '" + "9" * 400 + " mg/dL'\n",
        '{"weight_kg": ' + "9" * 400 + "}",
        '{"weight_kg": ' + "9" * 5000 + "}",
        "weight_kg: " + "9" * 5000 + "\n",
        '{"labs": {"scr": {"value": ' + "9" * 400 + ', "unit": "mg/dL"}}}',
    ],
)
def test_non_finite_numbers_are_refused(text: str) -> None:
    with pytest.raises(ProfileError) as caught:
        read_and_parse(text)
    assert str(caught.value).startswith("p.yaml")


# --- item 3: duplicate keys in JSON ---------------------------------------------------------


def test_duplicate_json_keys_are_refused_with_the_key_path() -> None:
    text = '{"neuro": {"cord_compression": true}, "neuro": {}}'
    with pytest.raises(ProfileError, match="duplicate key 'neuro'"):
        read_and_parse(text)
    nested = '{"neuro": {"mri_done": true, "mri_done": false}}'
    with pytest.raises(ProfileError, match=r"neuro\.mri_done"):
        read_and_parse(nested)


def test_batch_records_refuse_duplicate_keys(knowledge: Any) -> None:
    from bonecds.cohort.runners import _evaluate_record

    raw = b'{"neuro": {"cord_compression": true}, "neuro": {}}'
    outcome = _evaluate_record(raw, knowledge, DATE)
    assert outcome == [("neuro", "duplicate key 'neuro'")]


def test_batch_error_lines_show_units_not_values(knowledge: Any) -> None:
    from bonecds.cohort.runners import _evaluate_record

    raw = b'{"labs": {"scr": {"value": 1, "unit": "mg/L"}}, "sex": "Jane Doe 1970"}'
    outcome = dict(_evaluate_record(raw, knowledge, DATE))
    assert "unit 'mg/L' is not accepted" in outcome["labs.scr"]
    assert "Jane" not in str(outcome)


# --- items 5-7: reading, limits, messages ---------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "[" * 1200 + "]" * 1200,
        '{"a":' * 1200 + "1" + "}" * 1200,
        "a:\n" + "".join(" " * i + "b:\n" for i in range(1, 1200)),
        "[" * 1200,
        "ecog: 1\x00\n",
        "ecog: \x07 1\n",
        "ecog: !custom 1\n",
        "ecog: !!timestamp 1\n",
        "bone: &a {}\nspine: *a\n",
        "patient_id: \ud800\n",
    ],
)
def test_malformed_text_is_one_clean_profile_error(text: str) -> None:
    with pytest.raises(ProfileError) as caught:
        read_and_parse(text)
    assert "\n" not in str(caught.value)


def test_utf16_file_is_refused(tmp_path: Any) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("ecog: 1\n", encoding="utf-16")
    with pytest.raises(ProfileError, match=r"p\.yaml"):
        load_profile(path)


@pytest.mark.parametrize("key", ["a[b", "literal", "literal_x", "x]y[", "function-before[x]"])
def test_unknown_keys_that_look_like_validator_tags(key: str) -> None:
    assert any(f": {key}: unknown field" in p for p in problems_of({key: 1}))
    assert any(f": labs.{key}: unknown field" in p for p in problems_of({"labs": {key: 1}}))


def test_error_paths_drop_validator_steps_but_keep_user_keys() -> None:
    from bonecds.profile.model import _data_path

    data = {"labs": {"scr": "x"}, "a[b": {"c": 1}}
    assert _data_path(("labs", "function-before[check()]", "scr"), data) == ("labs", "scr")
    assert _data_path(("a[b", "c"), data) == ("a[b", "c")


def test_the_model_itself_refuses_non_finite_numbers() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        PatientProfile.model_validate({"weight_kg": float("inf")})


def test_an_alias_is_refused_where_it_is_used() -> None:
    with pytest.raises(ProfileError, match=r"^p\.yaml:2:8: YAML anchors and aliases"):
        read_and_parse("bone: &a {}\nspine: *a\n")


def test_control_characters_are_escaped_in_messages() -> None:
    problems = problems_of({"bad\nname\x1b[31m": 1})
    assert all("\n" not in p and "\x1b" not in p for p in problems)
    assert "bad\\nname\\x1b[31m" in problems[0]


def test_many_unknown_keys_are_refused_quickly() -> None:
    import time

    for text in (
        json.dumps({f"k{i}": i for i in range(100_000)}),
        "".join(f"k{i}: {i}\n" for i in range(100_000)),
    ):
        started = time.process_time()
        with pytest.raises(ProfileError, match="more than 10000 values"):
            read_and_parse(text)
        assert time.process_time() - started < 3  # generous; it took 16-32 s (JSON) before


def test_problems_reported_are_bounded() -> None:
    problems = problems_of({f"k{i}": i for i in range(30)})
    assert len(problems) == 21
    assert problems[-1] == "... and 10 more problems"


def test_oversized_text_is_refused() -> None:
    with pytest.raises(ProfileError, match="larger than"):
        read_structured("ecog: 1\n" + "#" * (2 * 1024 * 1024), "p.yaml")


# --- item 10: reports do not alias internal state ------------------------------------------


def _tamper(node: Any) -> None:
    if isinstance(node, dict):
        for key in list(node):
            if key in ("title", "text", "rationale", "label"):
                node[key] = "TAMPERED"
            elif key == "value":
                node[key] = 999
            else:
                _tamper(node[key])
    elif isinstance(node, list):
        for item in node:
            _tamper(item)
        node.append("TAMPERED")


def test_mutating_a_report_does_not_change_the_next(knowledge: Any) -> None:
    patient = load_profile("patient_fixtures/bases/breast-bone-mets.yaml")
    other = patient.model_copy(update={"patient_id": "other"})
    before = [evaluate(p, knowledge, DATE).to_json() for p in (patient, other)]
    for p in (patient, other):
        _tamper(evaluate_data(p, knowledge, DATE))
        _tamper(evaluate(p, knowledge, DATE).to_data())
        report = evaluate(p, knowledge, DATE)
        for item in report.ranked:
            for citation in item.citations:
                object.__setattr__(citation, "title", "TAMPERED")
    after = [evaluate(p, knowledge, DATE).to_json() for p in (patient, other)]
    assert after == before
    assert "TAMPERED" not in json.dumps(evaluate_data(patient, knowledge, DATE))


# --- item 11: the error family --------------------------------------------------------------


def test_api_argument_errors_are_bonecds_errors(knowledge: Any) -> None:
    with pytest.raises(BonecdsError, match="language"):
        evaluate({}, knowledge, DATE, language="fr")
    with pytest.raises(BonecdsError, match="as_of"):
        evaluate({}, knowledge, "2026-01-01")  # type: ignore[arg-type]
    with pytest.raises(BonecdsError, match="language"):
        evaluate_data({}, knowledge, DATE, language="fr")


def test_batch_interrupted_and_yaml_problem_are_bonecds_errors() -> None:
    from bonecds._yaml import YamlProblem
    from bonecds.cohort.run import BatchInterrupted

    assert issubclass(BatchInterrupted, BonecdsError)
    assert issubclass(YamlProblem, BonecdsError)


def test_profile_model_is_the_source_of_numeric_fields() -> None:
    assert "weight_kg" in numeric_fields()
    assert "labs.scr" in numeric_fields()
    assert PatientProfile.model_fields  # generated from the model, so new fields are covered


@pytest.mark.parametrize("value", [".nan", ".inf", "-.inf", "9" * 400])
def test_non_finite_settings_are_refused(tmp_path: Any, value: str) -> None:
    import shutil

    from bonecds import RuleError

    rules = tmp_path / "rules"
    shutil.copytree("rules", rules)
    settings = rules / "settings.yaml"
    text = settings.read_text(encoding="utf-8").replace("value: 8.9", f"value: {value}")
    settings.write_text(text, encoding="utf-8")
    with pytest.raises(RuleError, match="finite number"):
        load_knowledge(rules)


def test_batch_errors_name_the_field_from_the_problem_not_from_parsing_its_text(
    knowledge: Any,
) -> None:
    """A field path with a space or a colon in it stays the field path (batch once split
    the problem's text at ': ' and lost it to `<record>`)."""
    from bonecds.cohort.runners import _evaluate_record

    raw = b'{"primary": {"site": "breast", "odd key: here": 1}}'
    outcome = _evaluate_record(raw, knowledge, DATE)
    assert isinstance(outcome, list)
    assert [field for field, _ in outcome] == ["primary.odd key: here"]
