"""Ranking details: dose conflicts between rules are shown, never settled by rule order."""

from __future__ import annotations

import pickle
import shutil
from pathlib import Path

import pytest

from bonecds import Knowledge, evaluate, load_knowledge, ranking
from bonecds.synthetic import synthetic_cohort
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


def _zoledronic(knowledge_dir: Path) -> object:
    report = evaluate(BREAST, load_knowledge(knowledge_dir), AS_OF)
    return next(item for item in report.ranked if item.id == "zoledronic-acid").dose


def test_overlapping_dose_bands_show_the_lower_dose_and_the_conflict(tmp_path: Path) -> None:
    shutil.copytree(RULES, tmp_path / "rules")
    path = tmp_path / "rules" / "d-bone-modifying-agents.yaml"
    text = path.read_text(encoding="utf-8")
    band = "when: {field: derived.crcl_ml_min, gt: 60}"
    assert band in text
    path.write_text(text.replace(band, band.replace("gt:", "gte:")), encoding="utf-8")
    dose = _zoledronic(tmp_path / "rules")
    assert dose.amount == 3.5  # type: ignore[attr-defined]
    assert "conflicting dose rules: 4.0 mg also proposed" in dose.text  # type: ignore[attr-defined]


def test_a_single_band_gives_its_dose_without_conflict() -> None:
    dose = _zoledronic(RULES)
    assert dose.amount == 3.5  # type: ignore[attr-defined]
    assert "conflicting" not in dose.text  # type: ignore[attr-defined]
    assert dose.rules == ["zoledronic-acid-renal-dosing"]  # type: ignore[attr-defined]


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
    assert not empty.knowledge.report_memo, "the fresh pass read or kept memo entries"
    assert knowledge.knowledge.report_memo, "the warm passes did not use the memo"
    assert fresh == warm


def test_the_report_memo_stays_within_its_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ranking, "MEMO_SIZE", 50)
    knowledge = load_knowledge(RULES)  # its own, empty memo
    memo = knowledge.knowledge.report_memo
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
    assert knowledge.knowledge.report_memo
    restored = pickle.loads(pickle.dumps(knowledge))
    assert not restored.knowledge.report_memo
    assert (
        evaluate(BREAST, restored, AS_OF).to_json() == evaluate(BREAST, knowledge, AS_OF).to_json()
    )
