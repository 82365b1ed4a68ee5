"""The one table of plausible ranges: every number a profile carries, in its canonical unit.

A value outside its range cannot be a real measurement of this patient: it is refused, naming
the field (and the unit that would explain it), never evaluated. These are not decision
thresholds (those live only in the rules): they are wide limits that catch wrong units and
typing errors. Every row names where its limits come from; a row whose limits have no
published source yet says so, for clinical review. A new numeric profile field needs a row
here (tests/profile/test_boundaries.py checks that every numeric field has one).
"""

from __future__ import annotations

import types
import typing
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

__all__ = ["RANGES", "numeric_fields", "unwrap"]


@dataclass(frozen=True)
class Range:
    """Inclusive limits in `unit` (for a laboratory quantity: its canonical unit)."""

    low: float
    high: float | None  # None: no upper limit (counts, durations)
    unit: str
    source: str
    low_exclusive: bool = False

    def holds(self, value: float) -> bool:
        above = value > self.low if self.low_exclusive else value >= self.low
        return above and (self.high is None or value <= self.high)

    def describe(self) -> str:
        if self.high is None:
            return f"{'above' if self.low_exclusive else 'at least'} {self.low:g} {self.unit}"
        return f"{self.low:g}-{self.high:g} {self.unit}".rstrip()


_FDA_510K = "https://www.accessdata.fda.gov/scripts/cdrh/cfdocs/cfpmn/pmn.cfm?ID="
# DQD's measurement rows were dropped from its main branch in 2024 (commit 6e2da09): cite the
# pinned commit that still has them.
_DQD_CSV = (
    "(github.com/OHDSI/DataQualityDashboard, inst/csv/OMOP_CDMv5.4_Concept_Level.csv at 9c8ed4b)"
)
_DQD = (
    f"OHDSI DataQualityDashboard plausibleValueLow/High, concept 3025315 Body weight, kg {_DQD_CSV}"
)

# DQD's high for creatinine (5 mg/dL) would refuse patients on dialysis: only its low is used.
CREATININE = Range(
    0.1,
    25.0,
    "mg/dL",
    "low: OHDSI DataQualityDashboard plausibleValueLow, concept 3016723 Creatinine [Mass/volume] "
    f"in Serum or Plasma, mg/dL {_DQD_CSV}; high: issue 11 specification, no published upper "
    "limit found that spares dialysis patients (review)",
)
CALCIUM = Range(
    0.03,
    27.24,
    "mg/dL",
    f"FDA 510(k) K981578, Abbott Calcium: quantitation limit to linearity ({_FDA_510K}K981578)",
)
ALBUMIN = Range(
    0.3,
    9.4,
    "g/dL",
    f"FDA 510(k) K203248, Abbott Albumin BCG2: reportable interval ({_FDA_510K}K203248)",
)
PHOSPHATE = Range(
    0.10,
    25.3,
    "mg/dL",
    f"FDA 510(k) K981759, Abbott Phosphorus: limit of quantitation to linearity, serum "
    f"({_FDA_510K}K981759); figures as transcribed from the 510(k) summary, not yet checked "
    "against the FDA's own PDF (review)",
)
# Measuring intervals without dilution end near 5 mg/dL, and DQD's high for concept 3001420
# (3 mg/dL), below real severe hypermagnesaemia: the high is DQD's wider row for concept 3012095.
MAGNESIUM = Range(
    0.05,
    1000.0,
    "mg/dL",
    f"low: FDA 510(k) K173294, Abbott Magnesium: limit of quantitation ({_FDA_510K}K173294), "
    "as transcribed from the 510(k) summary, not yet checked against the FDA's own PDF "
    "(review); high: OHDSI DataQualityDashboard plausibleValueHigh, concept 3012095 Magnesium "
    f"[Moles/volume] in Serum or Plasma, mg/dL {_DQD_CSV}",
)
# Per administration, over the four agents (BmaAgent): denosumab 120 mg (Xgeva), pamidronate
# 90 mg (Aredia), zoledronic acid 5 mg (Reclast) are all below ibandronic acid's 150 mg.
_DOSE = Range(
    0,
    150,
    "mg",
    "the largest labelled dose per administration: ibandronic acid 150 mg once monthly "
    "(Bonviva EU SmPC, section 4.2, ec.europa.eu/health/documents/community-register/2022/"
    "20220725156260/anx_156260_fr.pdf); denosumab 120 mg, pamidronate 90 mg, zoledronic acid "
    "5 mg are below it",
)
CRCL = Range(
    0,
    400,
    "mL/min",
    "schema bound carried over from bonecds 0.1; no published range found that spares real "
    "patients: DQD's 26-194 mL/min (concept 3005770, creatinine renal clearance) would refuse "
    "renal failure and augmented clearance (review)",
)
_COUNT = Range(0, None, "", "a count: whole and not negative")
_DURATION = Range(0, None, "", "a duration: not negative")

RANGES: dict[str, Range] = {
    "age_years": Range(
        0,
        122.45,
        "years",
        "the longest verified human lifespan, 122 years 164 days (Jeanne Calment, 1875-1997; "
        "age validated by Robine and Allard, Science 1998;279:1834)",
    ),
    "weight_kg": Range(2, 500, "kg", _DQD),
    "ecog": Range(0, 4, "", "ECOG performance status grades 0-4 (clinical-brief.md)"),
    "life_expectancy_months": _DURATION,
    "drivers.pdl1_tps_pct": Range(0, 100, "%", "a tumour proportion score is a percentage"),
    "bone.lesion_count": _COUNT,
    "mets.total_lesion_count": _COUNT,
    "mets.liver_lesion_count": _COUNT,
    "mets.lung_lesion_count": _COUNT,
    "mets.brain_lesion_count": _COUNT,
    "mets.adrenal_lesion_count": _COUNT,
    "mets.nodal_lesion_count": _COUNT,
    "labs.crcl_ml_min": CRCL,
    "labs.scr": CREATININE,
    "labs.calcium_total": CALCIUM,
    "labs.calcium_ionised": CALCIUM,
    "labs.calcium_lln": CALCIUM,
    "labs.calcium_uln": CALCIUM,
    "labs.calcium_ionised_lln": CALCIUM,
    "labs.calcium_ionised_uln": CALCIUM,
    "labs.albumin": ALBUMIN,
    "labs.vitamin_d_25oh": Range(
        0,
        1000,
        "ng/mL",
        "high: OHDSI DataQualityDashboard plausibleValueHigh, concept 40765040 "
        "25-Hydroxyvitamin D2+25-Hydroxyvitamin D3 [Mass/volume] in Serum or Plasma, ng/mL "
        f"{_DQD_CSV}; low: not negative (DQD's low of 5 ng/mL would refuse real severe "
        "deficiency)",
    ),
    "labs.magnesium": MAGNESIUM,
    "labs.phosphate": PHOSPHATE,
    "labs.alp_u_l": Range(
        0,
        None,
        "U/L",
        "not negative; no published upper range found that spares real patients: DQD's "
        "20-731 U/L (concept 3035995) would refuse extensive bone metastases and Paget's disease "
        "above it and hypophosphatasia below it (review)",
    ),
    "labs.cea_ng_ml": Range(
        0,
        None,
        "ng/mL",
        "not negative; no published upper range found that spares real patients: DQD's "
        "0-1000 ng/mL (concept 3003785) would refuse values above 1000 ng/mL seen in metastatic "
        "colorectal cancer (review)",
    ),
    "dental.days_since_invasive_procedure": _DURATION,
    "meds.bma_months": _DURATION,
    "meds.bma_interval_weeks": Range(
        0,
        104,
        "weeks",
        "the longest labelled interval: zoledronic acid 5 mg once every 2 years (104 weeks), "
        "prevention of postmenopausal osteoporosis, Reclast US prescribing information "
        "(api.fda.gov/drug/label.json?search=set_id:5a9b3737-9ce6-4a89-b76e-6aab79eba9cf)",
        low_exclusive=True,
    ),
    "meds.bma_dose_mg": _DOSE,
    "meds.bma_doses_given": _COUNT,
    "meds.bma_start_crcl_ml_min": CRCL,
    "meds.bma_start_scr": CREATININE,
    "meds.previous_bma.months_since_stop": _DURATION,
    "meds.previous_bma.doses_given": _COUNT,
    "meds.previous_bma.dose_mg": _DOSE,
    "neuro.paraplegia_hours": _DURATION,
    "spine.sins": Range(0, 18, "", "SINS total 0-18 (Fisher 2010; clinical-brief.md)"),
    "long_bone.mirels": Range(4, 12, "", "Mirels score 4-12 (Mirels 1989; clinical-brief.md)"),
}


def numeric_fields() -> list[str]:
    """Every number a profile carries (plain numbers and laboratory quantities), by path,
    read from the model itself so that a new field is never missed."""
    from bonecds.profile.model import PatientProfile, Quantity

    return _numeric(PatientProfile, "", Quantity)


def _numeric(model: type[BaseModel], prefix: str, quantity: type[BaseModel]) -> list[str]:
    found = []
    for name, info in model.model_fields.items():
        kind = unwrap(info.annotation)
        path = f"{prefix}{name}"
        if kind is quantity or kind in (int, float):
            found.append(path)
        elif isinstance(kind, type) and issubclass(kind, BaseModel):
            found.extend(_numeric(kind, f"{path}.", quantity))
    return found


def unwrap(annotation: Any) -> Any:
    """A field's value type, without Optional and Annotated around it."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            annotation = next(a for a in typing.get_args(annotation) if a is not type(None))
        else:
            return annotation
