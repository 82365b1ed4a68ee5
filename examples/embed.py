"""Embed bonecds in a Python program: evaluate one patient in-process, then render CDS Hooks cards.

bonecds is a research prototype, not a medical device: every output must be checked by a
clinician. Run from the repository root:

    python examples/embed.py
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import bonecds
from bonecds.cds_hooks._cards import CardContext, patient_view_cards
from bonecds.cds_hooks._models import Source

RULES = Path(__file__).resolve().parents[1] / "rules"


def main() -> None:
    # Load and compile the knowledge base once; reuse it for every patient.
    knowledge = bonecds.load_knowledge(RULES)

    # A profile is plain data (or a bonecds.PatientProfile); labs carry their units.
    profile = bonecds.PatientProfile.model_validate(
        {
            "patient_id": "example-1",
            "age_years": 71,
            "sex": "male",
            "weight_kg": 78,
            "primary": {"site": "prostate", "castration_resistant": True},
            "bone": {"metastases_present": True, "painful": False},
            "labs": {
                "scr": {"value": 1.6, "unit": "mg/dL"},
                "calcium_total": {"value": 9.2, "unit": "mg/dL"},
                "albumin": {"value": 3.9, "unit": "g/dL"},
            },
            "dental": {"exam_done": True, "unhealed_oral_lesion": False},
            "meds": {"current_bma": []},
        }
    )

    # The evaluation date is an argument, so the same input always gives the same report.
    report = bonecds.evaluate(profile, knowledge, dt.date(2026, 11, 23))
    print(report.disclaimer)
    for item in report.ranked:
        dose = f" - {item.dose.text}" if item.dose else ""
        print(f"{item.rank}. {item.id}{dose}")
    for caution in report.cautions:
        print(f"caution {caution.id}: applies to {', '.join(caution.applies_to)}")

    # The same report as CDS Hooks cards, e.g. for an EHR integration that is not HTTP-based.
    source = Source(label="bonecds (research prototype)", url="https://example.org/bonecds")
    cards = patient_view_cards(report, CardContext(hook_instance="example-1", source=source))
    for card in cards.cards:
        print(f"[{card.indicator}] {card.summary}")


if __name__ == "__main__":
    main()
