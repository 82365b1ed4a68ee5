"""The patient profile: the vocabulary of the rule catalogue (§0.3) as strict pydantic models.

`None` always means *unknown*, never false or zero. Bounds reject impossible values (ECOG 7,
SINS 19, negative counts); decision thresholds live only in the rules. Laboratory values carry
their unit and are checked against the units accepted for that analyte.
"""

from __future__ import annotations

import difflib
import json
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from bonecds._yaml import YamlDocument, YamlProblem, parse_yaml
from bonecds.errors import ProfileError

# Accepted units per analyte, with the factor that converts each to the canonical unit (first).
ANALYTE_UNITS: dict[str, dict[str, float]] = {
    "creatinine": {"mg/dL": 1.0, "umol/L": 1 / 88.4, "µmol/L": 1 / 88.4},
    "calcium": {"mg/dL": 1.0, "mmol/L": 4.008},
    "albumin": {"g/dL": 1.0, "g/L": 0.1},
}

_QUANTITY_TEXT = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*(\S+)\s*$")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class Quantity(_Model):
    """A measured value with its unit, e.g. `{value: 2.4, unit: mmol/L}` or `"2.4 mmol/L"`."""

    value: float = Field(ge=0)
    unit: str


def _unit_check(analyte: str) -> Any:
    """A before-validator accepting `{value, unit}` or "value unit" in this analyte's units."""
    units = ANALYTE_UNITS[analyte]

    def check(raw: Any) -> Any:
        if isinstance(raw, int | float) and not isinstance(raw, bool):
            example = f"{{value: 1.0, unit: {next(iter(units))}}}"
            raise ValueError(f"a unit is required for {analyte}, e.g. '{example}'")
        if isinstance(raw, str):
            match = _QUANTITY_TEXT.match(raw)
            if not match:
                raise ValueError(f"expected '<number> <unit>' for {analyte}")
            raw = {"value": float(match.group(1)), "unit": match.group(2)}
        if isinstance(raw, dict) and "unit" in raw and raw["unit"] not in units:
            accepted = ", ".join(u for u in units if u != "µmol/L")
            raise ValueError(f"unit '{raw['unit']}' is not accepted for {analyte}; use {accepted}")
        if isinstance(raw, dict) and isinstance(raw.get("value"), int):
            raw = {**raw, "value": float(raw["value"])}
        return raw

    return check


Creatinine = Annotated[Quantity, BeforeValidator(_unit_check("creatinine"))]
Calcium = Annotated[Quantity, BeforeValidator(_unit_check("calcium"))]
Albumin = Annotated[Quantity, BeforeValidator(_unit_check("albumin"))]


def _int_to_text(raw: Any) -> Any:
    # YAML reads an ESCC grade of 2 as an integer; the scale's grades are labels (0, 1a ... 3).
    return str(raw) if isinstance(raw, int) and not isinstance(raw, bool) else raw


PrimarySite = Literal[
    "breast",
    "prostate",
    "lung_nsclc",
    "lung_sclc",
    "renal",
    "myeloma",
    "smoldering_myeloma",
    "mgus",
    "gctb",
    "osteosarcoma",
    "ewing",
    "chondrosarcoma",
    "colorectal",
    "other",
]
# The classes of data/histology.yaml (bonecds.histology); a test keeps the two equal.
HistologyClassId = Literal[
    "lymphoma",
    "leukaemia",
    "myeloma",
    "germ_cell_tumour",
    "small_cell_carcinoma",
    "non_small_cell_lung_cancer",
    "squamous_cell_carcinoma",
    "renal_cell_carcinoma",
    "adenocarcinoma",
    "melanoma",
]
BmaAgent = Literal["denosumab", "zoledronic_acid", "pamidronate", "ibandronate"]
DentalRiskFactor = Literal[
    "poor_hygiene",
    "periodontal_disease",
    "ill_fitting_dentures",
    "smoking",
    "uncontrolled_diabetes",
    "head_neck_rt",
]
Count = Annotated[int, Field(ge=0)]
NonNegative = Annotated[float, Field(ge=0)]


class Primary(_Model):
    site: PrimarySite | None = None
    histology: str | None = None
    histology_class: HistologyClassId | None = Field(
        default=None,
        description=(
            "Histology class (data/histology.yaml); when absent it is derived from "
            "histology_icdo3, then from the histology text"
        ),
    )
    histology_icdo3: Annotated[str, Field(pattern=r"^\d{4}/\d$")] | None = Field(
        default=None, description="ICD-O-3 morphology code of the primary tumour, e.g. 9680/3"
    )
    castration_resistant: bool | None = None
    controlled: bool | None = None
    definitive_treatment_planned: bool | None = None
    stage: str | None = None
    t_category: Literal["T0", "T1", "T2", "T3", "T4", "TX"] | None = None
    n_category: Literal["N0", "N1", "N2", "N3", "NX"] | None = None
    stage_group: Literal["I", "II", "III", "IV"] | None = None
    active_requiring_therapy: bool | None = None


class Drivers(_Model):
    egfr: Literal["positive", "negative"] | None = None
    alk: Literal["positive", "negative"] | None = None
    pdl1_tps_pct: Annotated[float, Field(ge=0, le=100)] | None = None


class Bone(_Model):
    metastases_present: bool | None = None
    lesion_count: Count | None = None
    sites: list[str] | None = None
    lesion_type: Literal["lytic", "blastic", "mixed"] | None = None
    spine_involved: bool | None = None
    long_bone_lesion: bool | None = None
    painful: bool | None = None
    imaging_done: bool | None = None


class Mets(_Model):
    total_lesion_count: Count | None = None
    all_lesions_sbrt_amenable: bool | None = None


class Labs(_Model):
    crcl_ml_min: Annotated[float, Field(ge=0, le=400)] | None = None
    on_dialysis: bool | None = None
    scr: Creatinine | None = None
    calcium_total: Calcium | None = None
    calcium_ionised: Calcium | None = None
    albumin: Albumin | None = None
    calcium_lln: Calcium | None = None
    calcium_uln: Calcium | None = None
    calcium_ionised_lln: Calcium | None = None
    calcium_ionised_uln: Calcium | None = Field(
        default=None,
        description="Reporting laboratory's upper limit of ionised calcium (mg/dL or mmol/L)",
    )
    alp_u_l: NonNegative | None = None
    cea_ng_ml: NonNegative | None = None


class Dental(_Model):
    exam_done: bool | None = None
    days_since_invasive_procedure: Count | None = None
    unhealed_oral_lesion: bool | None = None
    planned_invasive_procedure: bool | None = None
    mronj_status: Literal["none", "healed", "active"] | None = None
    risk_factors: list[DentalRiskFactor] | None = None


class Meds(_Model):
    current_bma: list[BmaAgent] | None = None
    bma_months: NonNegative | None = None
    bma_interval_weeks: Annotated[float, Field(gt=0, le=104)] | None = None
    antiangiogenic: bool | None = None
    corticosteroid: bool | None = None
    chemotherapy: bool | None = None
    ici: bool | None = None
    tki: bool | None = None


class Neuro(_Model):
    cord_compression: bool | None = None
    escc_grade: (
        Annotated[Literal["0", "1a", "1b", "1c", "2", "3"], BeforeValidator(_int_to_text)] | None
    ) = None
    deficit: Literal["none", "new", "established"] | None = None
    paraplegia_hours: NonNegative | None = None
    compression_single_area: bool | None = None
    mri_done: bool | None = None


class Spine(_Model):
    sins: Annotated[int, Field(ge=0, le=18)] | None = None


class LongBone(_Model):
    mirels: Annotated[int, Field(ge=4, le=12)] | None = None


class Hcm(_Model):
    symptomatic: bool | None = None


class Gctb(_Model):
    resectability: (
        Literal["resectable_acceptable_morbidity", "resection_severe_morbidity", "unresectable"]
        | None
    ) = None
    on_denosumab: bool | None = None
    new_osteolysis_or_pain_relapse: bool | None = None
    poor_mineralisation: bool | None = None


class Myeloma(_Model):
    vgpr_or_better: bool | None = None


class Lung(_Model):
    bsp_positive: bool | None = None
    cea_raised: bool | None = None
    alp_raised: bool | None = None


class Markers(_Model):
    glut1: str | None = None
    inos: str | None = None
    rankl: str | None = None
    pdl1: str | None = None


class PatientProfile(_Model):
    """One patient, as the rules see them. Every clinical field may be absent (unknown)."""

    patient_id: str | None = None
    age_years: Annotated[float, Field(ge=0, le=120)] | None = None
    sex: Literal["female", "male"] | None = None
    weight_kg: Annotated[float, Field(gt=0, le=400)] | None = None
    pregnant: bool | None = None
    reproductive_potential: bool | None = None
    skeletal_maturity: Literal["mature", "immature"] | None = None
    primary: Primary = Primary()
    drivers: Drivers = Drivers()
    bone: Bone = Bone()
    mets: Mets = Mets()
    ecog: Annotated[int, Field(ge=0, le=4)] | None = None
    life_expectancy_months: NonNegative | None = None
    labs: Labs = Labs()
    dental: Dental = Dental()
    meds: Meds = Meds()
    neuro: Neuro = Neuro()
    spine: Spine = Spine()
    long_bone: LongBone = LongBone()
    hcm: Hcm = Hcm()
    gctb: Gctb = Gctb()
    disease_status: Literal["responding", "stable", "progressing"] | None = None
    myeloma: Myeloma = Myeloma()
    lung: Lung = Lung()
    markers: Markers = Markers()


def parse_profile(
    data: Any, source: str = "<profile>", doc: YamlDocument | None = None
) -> PatientProfile:
    """Validate plain data as a profile; errors name the field path (and line when known)."""
    if not isinstance(data, dict):
        raise ProfileError([f"{source}: a patient profile must be a mapping of fields"])
    try:
        return PatientProfile.model_validate(data)
    except ValidationError as error:
        raise ProfileError(_describe(error, source, doc)) from None


def load_profile(path: Path | str, text: str | None = None) -> PatientProfile:
    """Read a profile from a YAML or JSON file (or the given text, read from `path`)."""
    source = str(path)
    if text is None:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise ProfileError(
                [f"{source}: cannot read file ({error.__class__.__name__})"]
            ) from None
    data, doc = read_structured(text, source)
    return parse_profile(data, source, doc)


def read_structured(text: str, source: str) -> tuple[Any, YamlDocument | None]:
    """Parse JSON (when it looks like JSON) or YAML text, naming file:line on syntax errors."""
    if text.lstrip().startswith(("{", "[")):
        try:
            return json.loads(text), None
        except json.JSONDecodeError as error:
            raise ProfileError(
                [f"{source}:{error.lineno}:{error.colno}: malformed JSON: {error.msg}"]
            ) from None
    try:
        doc = parse_yaml(text, allow_aliases=True)
    except YamlProblem as problem:
        raise ProfileError(
            [f"{source}:{problem.line}:{problem.column}: {problem.message}"]
        ) from None
    return doc.data, doc


def _describe(error: ValidationError, source: str, doc: YamlDocument | None) -> list[str]:
    # Built from loc and type only: errors() also carries the input values (patient data).
    problems = []
    for item in error.errors(include_input=False, include_url=False):
        loc = tuple(part for part in item["loc"] if not _is_validator_tag(part))
        path = ".".join(str(part) for part in loc) or "<profile>"
        where = source
        if doc is not None:
            line, column = doc.position(loc)
            where = f"{source}:{line}:{column}"
        problems.append(f"{where}: {path}: {_message(item, loc)}")
    return problems


def _sibling_fields(parent: tuple[Any, ...]) -> list[str]:
    """Field names of the model found by following `parent` from PatientProfile."""
    model: Any = PatientProfile
    for part in parent:
        info = model.model_fields.get(part) if isinstance(part, str) else None
        if info is None or not isinstance(info.default, BaseModel):
            return []
        model = type(info.default)
    return list(model.model_fields)


def _is_validator_tag(part: Any) -> bool:
    # pydantic adds a step like 'function-before[check()]' or a Literal tag to some locations.
    return isinstance(part, str) and ("[" in part or part.startswith("literal"))


def _message(item: Any, loc: tuple[Any, ...]) -> str:
    kind = item["type"]
    if kind == "extra_forbidden":
        close = difflib.get_close_matches(str(loc[-1]), _sibling_fields(loc[:-1]), n=1, cutoff=0.6)
        return f"unknown field; did you mean '{close[0]}'?" if close else "unknown field"
    if kind == "value_error":
        return str(item["msg"]).removeprefix("Value error, ")
    return str(item["msg"])
