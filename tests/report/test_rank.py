"""Ranking: order (emergencies, scores, ids), request gates and needed fields to `conditional_on`,
score adjustments, contraindications; dose conflicts shown, not settled by rule order; the memo."""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import pytest
import yaml

from bonecds import Knowledge, evaluate, load_knowledge
from bonecds.report import rank as ranking
from bonecds.report.model import Dose
from bonecds.testing.synthetic import synthetic_cohort
from tests.conftest import AS_OF, RULES

BREAST = {
    "age_years": 60,
    "sex": "female",
    "weight_kg": 70,
    "pregnant": False,
    "primary": {"site": "breast"},
    "bone": {"metastases_present": True},
    "labs": {"crcl_ml_min": 60},
}


def _zoledronic(knowledge_dir: Path) -> Dose:
    report = evaluate(BREAST, load_knowledge(knowledge_dir), AS_OF)
    dose = next(item for item in report.ranked if item.id == "zoledronic-acid").dose
    assert dose is not None
    return dose


def test_overlapping_dose_bands_show_the_lower_dose_and_the_conflict(tmp_path: Path) -> None:
    shutil.copytree(RULES, tmp_path / "rules")
    path = tmp_path / "rules" / "d-bone-modifying-agents.yaml"
    text = path.read_text(encoding="utf-8")
    band = "when: {field: derived.crcl_ml_min, gt: 60}"
    assert band in text
    path.write_text(text.replace(band, band.replace("gt:", "gte:")), encoding="utf-8")
    dose = _zoledronic(tmp_path / "rules")
    assert dose.amount == 3.5
    assert "conflicting dose rules: 4.0 mg also proposed" in dose.text


def test_a_single_band_gives_its_dose_without_conflict() -> None:
    dose = _zoledronic(RULES)
    assert dose.amount == 3.5
    assert "conflicting" not in dose.text
    assert dose.rules == ["zoledronic-acid-renal-dosing"]


def test_reports_reusing_earlier_patients_hits_equal_reports_made_afresh(
    knowledge: Knowledge, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two passes in opposite orders over a warm memo, so most hits come from other patients.
    cohort = synthetic_cohort(200, seed=33)
    languages = ("en", "zh")
    warm = [
        evaluate(p, knowledge, AS_OF, language=lang).to_json() for lang in languages for p in cohort
    ]
    warm_reversed = [
        evaluate(p, knowledge, AS_OF, language=lang).to_json()
        for lang in languages
        for p in reversed(cohort)
    ]
    assert warm_reversed == [text for half in (warm[:200], warm[200:]) for text in reversed(half)]
    # Afresh: a copy of the knowledge base with an empty memo (pickling leaves it behind) that
    # keeps nothing, so every hit is made anew for its own patient.
    monkeypatch.setattr(ranking, "MEMO_SIZE", 0)
    empty = pickle.loads(pickle.dumps(knowledge))
    fresh = [
        evaluate(p, empty, AS_OF, language=lang).to_json() for lang in languages for p in cohort
    ]
    assert not empty.base.report_memo, "the fresh pass read or kept memo entries"
    assert knowledge.base.report_memo, "the warm passes did not use the memo"
    assert fresh == warm


def test_the_report_memo_stays_within_its_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ranking, "MEMO_SIZE", 50)
    knowledge = load_knowledge(RULES)  # its own, empty memo
    memo = knowledge.base.report_memo
    assert not memo
    sizes = []
    for profile in synthetic_cohort(100, seed=34):
        evaluate(profile, knowledge, AS_OF)
        sizes.append(len(memo))
    assert max(sizes) == 50, sizes  # filled, and never beyond


def test_memo_keys_tell_equal_values_of_different_types_apart() -> None:
    # True == 1 == 1.0 in Python, yet a report shows them as "yes", "1" and "1.0".
    keys = {ranking._typed(value) for value in (True, 1, 1.0, [1], [True], None, "1")}
    assert len(keys) == 7


def test_a_pickled_knowledge_base_leaves_its_report_memo_behind(knowledge: Knowledge) -> None:
    evaluate(BREAST, knowledge, AS_OF)
    assert knowledge.base.report_memo
    restored = pickle.loads(pickle.dumps(knowledge))
    assert not restored.base.report_memo
    assert (
        evaluate(BREAST, restored, AS_OF).to_json() == evaluate(BREAST, knowledge, AS_OF).to_json()
    )


# The ranking rules, on a toy knowledge base: the project's settings, sources and vocabulary,
# and rules written for these tests only. Their scores are arbitrary test values (not clinical
# content); only their order matters here.
def _toy_rule(
    rule_id: str, when: object, effects: list[object], **more: object
) -> dict[str, object]:
    return {
        "id": rule_id,
        "version": 1,
        "status": "draft",
        "title": f"toy rule {rule_id}",
        "kind": "option",
        "when": when,
        "effects": effects,
        "rationale": "A rule written for the ranking tests.",
        "citations": [{"source": "R3"}],
        "translations": {"zh": {"title": "测试规则", "rationale": "测试。"}},
        **more,
    }


BREAST_SITE = {"field": "primary.site", "eq": "breast"}
TOY_RULES = [
    _toy_rule(
        "toy-zoledronic",
        BREAST_SITE,
        [{"propose": "zoledronic-acid", "score": 60, "purpose": "sre-prevention"}],
    ),
    _toy_rule(
        "toy-denosumab",
        BREAST_SITE,
        [{"propose": "denosumab", "score": 60, "purpose": "sre-prevention"}],
    ),
    _toy_rule(
        "toy-pamidronate",
        BREAST_SITE,
        [{"propose": "pamidronate", "score": 70, "purpose": "sre-prevention"}],
    ),
    _toy_rule(
        "toy-sbrt-needs-age",
        {"all": [BREAST_SITE, {"field": "age_years", "gte": 18}]},
        [{"propose": "sbrt", "score": 50, "purpose": "oligometastatic"}],
        needs=["age_years"],
    ),
    _toy_rule(
        "toy-emergency",
        {"field": "ecog", "eq": 4},
        [{"propose": "mscc-emergency", "score": 5, "purpose": "emergency"}],
    ),
    _toy_rule(
        "toy-weight-request",
        {"all": [BREAST_SITE, {"field": "weight_kg", "known": False}]},
        [
            {
                "request": ["weight_kg"],
                "reason": "toy request",
                "gates": ["zoledronic-acid"],
            }
        ],
        kind="data-request",
    ),
    _toy_rule(
        "toy-adjust-30",
        {"field": "ecog", "eq": 2},
        [{"adjust": "pamidronate", "score": 30, "reason": "toy 30"}],
    ),
    _toy_rule(
        "toy-adjust-40",
        {"field": "ecog", "in": [2, 3]},
        [{"adjust": "pamidronate", "score": 40, "reason": "toy 40"}],
    ),
    _toy_rule(
        "toy-contraindicate",
        {"field": "ecog", "eq": 3},
        [{"contraindicate": ["denosumab"], "reason": "toy"}],
        kind="contraindication",
    ),
]


@pytest.fixture(scope="module")
def toy(tmp_path_factory: pytest.TempPathFactory) -> Knowledge:
    root = tmp_path_factory.mktemp("toy-rules")
    for name in ("settings.yaml", "sources.yaml", "vocabulary.yaml"):
        shutil.copy(RULES / name, root / name)
    rules = json.loads(json.dumps(TOY_RULES))  # distinct objects: YAML aliases are refused
    text = yaml.safe_dump({"section": "T", "title": "toy", "rules": rules}, allow_unicode=True)
    (root / "toy.yaml").write_text(text, encoding="utf-8")
    return load_knowledge(root)


def _ranked(toy: Knowledge, profile: dict[str, object]) -> list[tuple[str, int, float]]:
    return [(item.id, item.rank, item.score) for item in evaluate(profile, toy, AS_OF).ranked]


def test_emergencies_first_then_higher_scores_then_ids(toy: Knowledge) -> None:
    profile = {"primary": {"site": "breast"}, "ecog": 4, "age_years": 60}
    assert _ranked(toy, profile) == [
        ("mscc-emergency", 1, 5),  # first despite the lowest score
        ("pamidronate", 2, 70),
        ("denosumab", 3, 60),  # a tie at 60: by id
        ("zoledronic-acid", 4, 60),
        ("sbrt", 5, 50),
    ]


def test_a_request_makes_the_options_it_gates_conditional(toy: Knowledge) -> None:
    report = evaluate({"primary": {"site": "breast"}, "age_years": 60}, toy, AS_OF)
    conditional = {item.id: item.conditional_on for item in report.ranked}
    assert conditional["zoledronic-acid"] == ["weight_kg"]
    assert conditional["denosumab"] == conditional["pamidronate"] == conditional["sbrt"] == []
    (request,) = report.data_requests
    assert (request.field, request.gates, request.rules) == (
        "weight_kg",
        ["zoledronic-acid"],
        ["toy-weight-request"],
    )
    known = {"primary": {"site": "breast"}, "age_years": 60, "weight_kg": 70}
    report = evaluate(known, toy, AS_OF)
    assert report.data_requests == []
    assert all(item.conditional_on == [] for item in report.ranked)


def test_an_unknown_needed_field_makes_the_option_conditional_and_is_requested(
    toy: Knowledge,
) -> None:
    profile = {"primary": {"site": "breast"}, "weight_kg": 70}
    report = evaluate(profile, toy, AS_OF)
    (sbrt,) = [item for item in report.ranked if item.id == "sbrt"]
    assert sbrt.conditional_on == ["age_years"]
    (request,) = report.data_requests
    assert (request.field, request.gates, request.rules) == (
        "age_years",
        ["sbrt"],
        ["toy-sbrt-needs-age"],
    )
    # A known value that fails the condition: no proposal and nothing asked.
    report = evaluate({**profile, "age_years": 12}, toy, AS_OF)
    assert "sbrt" not in [item.id for item in report.ranked]
    assert report.data_requests == []


def test_the_lowest_adjusted_score_wins_and_re_ranks(toy: Knowledge) -> None:
    profile = {"primary": {"site": "breast"}, "ecog": 2, "age_years": 60}
    report = evaluate({**profile, "weight_kg": 70}, toy, AS_OF)
    assert [(item.id, item.score) for item in report.ranked] == [
        ("denosumab", 60),
        ("zoledronic-acid", 60),
        ("sbrt", 50),
        ("pamidronate", 30),  # 70, adjusted to 30 and then to 40: the lower holds
    ]
    pamidronate = report.ranked[-1]
    assert pamidronate.score_note is not None
    assert pamidronate.score_note.startswith("30 (toy-adjust-30)")
    assert pamidronate.rules == ["toy-pamidronate", "toy-adjust-30", "toy-adjust-40"]
    one = evaluate({**profile, "ecog": 3}, toy, AS_OF).ranked
    assert [(i.id, i.score) for i in one if i.id == "pamidronate"] == [("pamidronate", 40)]


def test_a_contraindicated_option_leaves_the_ranking_which_closes_up(toy: Knowledge) -> None:
    profile = {"primary": {"site": "breast"}, "ecog": 3, "age_years": 60}
    report = evaluate(profile, toy, AS_OF)
    assert [(item.id, item.rank) for item in report.ranked] == [
        ("zoledronic-acid", 1),
        ("sbrt", 2),
        ("pamidronate", 3),
    ]
    assert [item.id for item in report.contraindicated] == ["denosumab"]
