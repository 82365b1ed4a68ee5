"""Ranking details: dose conflicts between rules are shown, never settled by rule order."""

from __future__ import annotations

import shutil
from pathlib import Path

from bonecds import evaluate, load_knowledge
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
