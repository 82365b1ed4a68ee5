"""Seeded synthetic patients for soak tests and benchmarks (never real data).

Values are drawn across and around the catalogue's thresholds, with many fields left unknown,
so that every rule and every unknown-value path gets exercised.
"""

from __future__ import annotations

import random
import typing
from typing import Any

from bonecds.profile.model import DentalRiskFactor, PrimarySite

__all__ = ["synthetic_cohort", "synthetic_profile"]

SITES = list(typing.get_args(PrimarySite))
RISK_FACTORS = list(typing.get_args(DentalRiskFactor))
AGENTS = ["denosumab", "zoledronic_acid", "pamidronate", "ibandronate"]
LESION_SITES = ["T4 vertebra", "L2 vertebra", "left femur", "pelvis", "rib", "humerus", "skull"]


def synthetic_profile(
    rng: random.Random, index: int = 0, known: float = 0.7, lesions: int | None = None
) -> dict[str, Any]:
    """One plausible-looking patient; each field is known with probability `known` (about a
    third unknown by default). `lesions`, when given, lists that many bone lesion sites and
    sets the lesion counts to match (for benchmarks; it draws nothing from `rng`)."""
    profile: dict[str, Any] = {"patient_id": f"synthetic-{index}"}

    def maybe(key: str, value: Any, target: dict[str, Any] = profile) -> None:
        if rng.random() < known:
            target[key] = value

    maybe("age_years", rng.randint(8, 95))
    maybe("sex", rng.choice(["female", "male"]))
    maybe("weight_kg", rng.randint(35, 120))
    maybe("pregnant", rng.random() < 0.05)
    maybe("skeletal_maturity", rng.choice(["mature", "immature"]))
    maybe("ecog", rng.randint(0, 4))
    maybe("life_expectancy_months", rng.choice([1, 2, 3, 4, 6, 12, 36]))
    profile["primary"] = {"site": rng.choice(SITES)}
    maybe("castration_resistant", rng.random() < 0.5, profile["primary"])
    maybe("controlled", rng.random() < 0.5, profile["primary"])
    profile["bone"] = {}
    maybe("metastases_present", rng.random() < 0.8, profile["bone"])
    maybe("spine_involved", rng.random() < 0.4, profile["bone"])
    maybe("painful", rng.random() < 0.5, profile["bone"])
    maybe("long_bone_lesion", rng.random() < 0.3, profile["bone"])
    profile["mets"] = {}
    maybe("total_lesion_count", rng.randint(0, 9), profile["mets"])
    profile["labs"] = {}
    maybe("crcl_ml_min", rng.choice([15, 29, 30, 39, 40, 49, 50, 60, 61, 90]), profile["labs"])
    maybe("scr", {"value": rng.choice([0.7, 1.0, 1.4, 2.5]), "unit": "mg/dL"}, profile["labs"])
    maybe(
        "calcium_total",
        {"value": rng.choice([7.8, 8.8, 9.5, 11.0, 12.5, 14.2]), "unit": "mg/dL"},
        profile["labs"],
    )
    maybe("albumin", {"value": rng.choice([2.5, 3.5, 4.0]), "unit": "g/dL"}, profile["labs"])
    profile["dental"] = {}
    maybe("exam_done", rng.random() < 0.5, profile["dental"])
    maybe("mronj_status", rng.choice(["none", "healed", "active"]), profile["dental"])
    maybe("risk_factors", rng.sample(RISK_FACTORS, rng.randint(0, 2)), profile["dental"])
    maybe("days_since_invasive_procedure", rng.randint(0, 30), profile["dental"])
    profile["meds"] = {}
    maybe("current_bma", rng.sample(AGENTS, rng.randint(0, 2)), profile["meds"])
    maybe("corticosteroid", rng.random() < 0.3, profile["meds"])
    profile["neuro"] = {}
    maybe("cord_compression", rng.random() < 0.1, profile["neuro"])
    maybe("deficit", rng.choice(["none", "new", "established"]), profile["neuro"])
    profile["spine"] = {}
    maybe("sins", rng.randint(0, 18), profile["spine"])
    profile["long_bone"] = {}
    maybe("mirels", rng.randint(4, 12), profile["long_bone"])
    profile["gctb"] = {}
    maybe(
        "resectability",
        rng.choice(
            ["resectable_acceptable_morbidity", "resection_severe_morbidity", "unresectable"]
        ),
        profile["gctb"],
    )
    maybe("on_denosumab", rng.random() < 0.3, profile["gctb"])
    if lesions is not None:
        sites = [f"{LESION_SITES[i % len(LESION_SITES)]} #{i + 1}" for i in range(lesions)]
        profile["bone"].update(sites=sites, lesion_count=lesions)
        profile["mets"]["total_lesion_count"] = lesions
    return profile


def synthetic_cohort(
    size: int, seed: int = 2026, known: float = 0.7, lesions: int | None = None
) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    return [synthetic_profile(rng, index, known, lesions) for index in range(size)]
