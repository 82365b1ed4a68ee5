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

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, JsonValue, ValidationError

from bonecds._yaml import YamlDocument, YamlProblem, parse_yaml
from bonecds.errors import ProfileError

# Accepted units per analyte, with the factor that converts each to the canonical unit (first).
ANALYTE_UNITS: dict[str, dict[str, float]] = {
    "creatinine": {"mg/dL": 1.0, "umol/L": 1 / 88.4, "µmol/L": 1 / 88.4},
    "calcium": {"mg/dL": 1.0, "mmol/L": 4.008},
    "albumin": {"g/dL": 1.0, "g/L": 0.1},
    # 25-OH vitamin D: 1 ng/mL = 2.496 nmol/L (molar mass 400.6 g/mol).
    "vitamin_d": {"ng/mL": 1.0, "nmol/L": 1 / 2.496},
    # Magnesium 24.305 g/mol, divalent: 1 mmol/L = 2.431 mg/dL = 2 mEq/L.
    "magnesium": {"mg/dL": 1.0, "mmol/L": 2.431, "mEq/L": 1.2155},
    # Phosphate reported as phosphorus, 30.97 g/mol: 1 mmol/L = 3.097 mg/dL.
    "phosphate": {"mg/dL": 1.0, "mmol/L": 3.097},
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
VitaminD = Annotated[Quantity, BeforeValidator(_unit_check("vitamin_d"))]
Magnesium = Annotated[Quantity, BeforeValidator(_unit_check("magnesium"))]
Phosphate = Annotated[Quantity, BeforeValidator(_unit_check("phosphate"))]


def _int_to_text(raw: Any) -> Any:
    # YAML reads an ESCC grade of 2 as an integer; the scale's grades are labels (0, 1a ... 3).
    return str(raw) if isinstance(raw, int) and not isinstance(raw, bool) else raw


def _field(description: str, unit: str | None = None) -> Any:
    """An optional field (None = unknown) with the description and unit the schema shows."""
    extra: dict[str, JsonValue] | None = {"unit": unit} if unit else None
    text = f"{description} ({unit})" if unit else description
    return Field(None, description=text, json_schema_extra=extra)


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
# A test result; "pending" (sent, no result yet) is known and differs from unknown (None).
TestStatus = Literal["positive", "negative", "pending", "not_tested"]
EgfrVariant = Literal["exon19_deletion", "l858r", "exon20_insertion", "other"]
SystemicTherapyClass = Literal[
    "aromatase_inhibitor",
    "tamoxifen",
    "adt",
    "ar_pathway_inhibitor",
    "cdk46_inhibitor",
    "anti_her2",
    "immunotherapy",
    "radium_223",
    "proteasome_inhibitor",
    "immunomodulatory_drug",
    "anti_cd38",
    "bcma_directed",
]
# How a clinician's number is meant: exact, or a bound ("more than 12 months").
Bound = Literal["exact", "more_than", "less_than"]
Count = Annotated[int, Field(ge=0)]
NonNegative = Annotated[float, Field(ge=0)]


class Primary(_Model):
    """The primary tumour."""

    site: PrimarySite | None = _field("Primary tumour site or disease")
    histology: str | None = _field("Histology as reported (free text)")
    histology_class: HistologyClassId | None = _field(
        "Histology class (data/histology.yaml); when absent it is derived from "
        "histology_icdo3, then from the histology text"
    )
    histology_icdo3: Annotated[str, Field(pattern=r"^\d{4}/\d$")] | None = _field(
        "ICD-O-3 morphology code of the primary tumour, e.g. 9680/3"
    )
    castration_resistant: bool | None = _field("Prostate: castration-resistant disease")
    controlled: bool | None = _field("Primary tumour controlled")
    definitive_treatment_planned: bool | None = _field(
        "Definitive treatment of the primary planned"
    )
    stage: str | None = _field("Stage as reported (free text)")
    t_category: Literal["T0", "T1", "T2", "T3", "T4", "TX"] | None = _field("TNM T category")
    n_category: Literal["N0", "N1", "N2", "N3", "NX"] | None = _field("TNM N category")
    stage_group: Literal["I", "II", "III", "IV"] | None = _field("Anatomic stage group")
    active_requiring_therapy: bool | None = _field("Myeloma: active disease requiring therapy")


class Drivers(_Model):
    """Receptor and driver status; pending means sent and awaited, not unknown."""

    egfr: TestStatus | None = _field("EGFR mutation status")
    egfr_variant: EgfrVariant | None = _field("EGFR variant when EGFR is positive")
    alk: TestStatus | None = _field("ALK rearrangement status")
    ros1: TestStatus | None = _field("ROS1 rearrangement status")
    braf: TestStatus | None = _field("BRAF V600 mutation status")
    kras: TestStatus | None = _field("KRAS mutation status")
    er: TestStatus | None = _field("Oestrogen-receptor status")
    pr: TestStatus | None = _field("Progesterone-receptor status")
    her2: TestStatus | None = _field("HER2 status (positive = IHC 3+ or ISH amplified)")
    pdl1_tps_pct: Annotated[float, Field(ge=0, le=100)] | None = _field(
        "PD-L1 tumour proportion score", "%"
    )


class Bone(_Model):
    """Bone metastases."""

    metastases_present: bool | None = _field("Bone metastases present")
    lesion_count: Count | None = _field("Number of bone lesions", "lesions")
    lesion_count_bound: Bound | None = _field(
        "How lesion_count is meant: exact, or a bound ('more than 10 lesions')"
    )
    sites: list[str] | None = _field("Skeletal sites involved (free text)")
    lesion_type: Literal["lytic", "blastic", "mixed"] | None = _field("Radiographic lesion type")
    spine_involved: bool | None = _field("Spine involved")
    long_bone_lesion: bool | None = _field("Lesion in a long bone")
    painful: bool | None = _field("Bone pain from the metastases")
    imaging_done: bool | None = _field("Staging imaging of the skeleton done")
    pathological_fracture: bool | None = _field("An existing pathological fracture")
    prior_rt_to_lesion: bool | None = _field("The lesion being treated had radiotherapy before")
    prior_rt_sites: list[str] | None = _field("Sites treated with radiotherapy before (free text)")


class Mets(_Model):
    """Metastatic burden, bone and elsewhere."""

    total_lesion_count: Count | None = _field("Metastases at all sites", "lesions")
    total_lesion_count_bound: Bound | None = _field(
        "How total_lesion_count is meant: exact, or a bound"
    )
    all_lesions_sbrt_amenable: bool | None = _field("Every lesion amenable to SABR")
    liver_lesion_count: Count | None = _field("Liver metastases (0 = none)", "lesions")
    lung_lesion_count: Count | None = _field("Lung metastases (0 = none)", "lesions")
    brain_lesion_count: Count | None = _field("Brain metastases (0 = none)", "lesions")
    adrenal_lesion_count: Count | None = _field("Adrenal metastases (0 = none)", "lesions")
    nodal_lesion_count: Count | None = _field("Distant nodal metastases (0 = none)", "lesions")


class Labs(_Model):
    """Laboratory values; quantities carry their unit."""

    crcl_ml_min: Annotated[float, Field(ge=0, le=400)] | None = _field(
        "Creatinine clearance, measured or reported (else computed by Cockcroft-Gault)", "mL/min"
    )
    on_dialysis: bool | None = _field("On renal replacement therapy (dialysis)")
    scr: Creatinine | None = _field("Serum creatinine", "mg/dL or umol/L")
    calcium_total: Calcium | None = _field("Total serum calcium", "mg/dL or mmol/L")
    calcium_ionised: Calcium | None = _field("Ionised calcium", "mg/dL or mmol/L")
    albumin: Albumin | None = _field("Serum albumin", "g/dL or g/L")
    calcium_lln: Calcium | None = _field("Laboratory lower limit, total calcium", "mg/dL or mmol/L")
    calcium_uln: Calcium | None = _field("Laboratory upper limit, total calcium", "mg/dL or mmol/L")
    calcium_ionised_lln: Calcium | None = _field(
        "Laboratory lower limit, ionised calcium", "mg/dL or mmol/L"
    )
    calcium_ionised_uln: Calcium | None = _field(
        "Laboratory upper limit, ionised calcium", "mg/dL or mmol/L"
    )
    vitamin_d_25oh: VitaminD | None = _field("Serum 25-hydroxyvitamin D", "ng/mL or nmol/L")
    magnesium: Magnesium | None = _field("Serum magnesium", "mg/dL, mmol/L or mEq/L")
    phosphate: Phosphate | None = _field("Serum phosphate (as phosphorus)", "mg/dL or mmol/L")
    alp_u_l: NonNegative | None = _field("Alkaline phosphatase", "U/L")
    cea_ng_ml: NonNegative | None = _field("Carcinoembryonic antigen", "ng/mL")


class Dental(_Model):
    """Dental status for osteonecrosis-of-the-jaw risk."""

    exam_done: bool | None = _field("Dental examination done")
    days_since_invasive_procedure: Count | None = _field(
        "Days since the last invasive dental procedure", "days"
    )
    unhealed_oral_lesion: bool | None = _field("An unhealed oral lesion or extraction site")
    planned_invasive_procedure: bool | None = _field("Invasive dental procedure planned")
    mronj_status: Literal["none", "healed", "active"] | None = _field(
        "Medication-related osteonecrosis of the jaw"
    )
    risk_factors: list[DentalRiskFactor] | None = _field("Oral risk factors present")


class PreviousBma(_Model):
    """A bone-modifying agent taken before and stopped."""

    agent: BmaAgent | None = _field("The agent")
    months_since_stop: NonNegative | None = _field("Time since the last dose", "months")
    doses_given: Count | None = _field("Number of doses given", "doses")
    dose_mg: NonNegative | None = _field("Dose per administration", "mg")


class Meds(_Model):
    """Current and past medication."""

    current_bma: list[BmaAgent] | None = _field("Bone-modifying agent(s) now given")
    bma_months: NonNegative | None = _field("Time on the current agent", "months")
    bma_interval_weeks: Annotated[float, Field(gt=0, le=104)] | None = _field(
        "Dosing interval of the current agent", "weeks"
    )
    bma_dose_mg: NonNegative | None = _field("Dose per administration of the current agent", "mg")
    bma_doses_given: Count | None = _field("Doses of the current agent given so far", "doses")
    bma_start_crcl_ml_min: Annotated[float, Field(ge=0, le=400)] | None = _field(
        "Creatinine clearance when the current agent started (its dose rests on it)", "mL/min"
    )
    bma_start_scr: Creatinine | None = _field(
        "Serum creatinine when the current agent started", "mg/dL or umol/L"
    )
    previous_bma: PreviousBma = Field(
        PreviousBma(), description="A bone-modifying agent taken before and stopped"
    )
    systemic_therapy: list[SystemicTherapyClass] | None = _field(
        "Current systemic anticancer therapy, by class"
    )
    antiangiogenic: bool | None = _field("On an antiangiogenic agent")
    corticosteroid: bool | None = _field("On a corticosteroid")
    chemotherapy: bool | None = _field("On cytotoxic chemotherapy")
    ici: bool | None = _field("On an immune checkpoint inhibitor")
    tki: bool | None = _field("On a tyrosine kinase inhibitor")
    opioid: bool | None = _field("On an opioid analgesic")


class Neuro(_Model):
    """Neurology and spinal cord compression."""

    cord_compression: bool | None = _field("Spinal cord compression on imaging")
    escc_grade: (
        Annotated[Literal["0", "1a", "1b", "1c", "2", "3"], BeforeValidator(_int_to_text)] | None
    ) = _field("Epidural spinal cord compression (Bilsky) grade")
    deficit: Literal["none", "new", "established"] | None = _field("Neurological deficit")
    paraplegia_hours: NonNegative | None = _field("Duration of paraplegia", "hours")
    compression_single_area: bool | None = _field("Compression confined to one area")
    mri_done: bool | None = _field("Whole-spine MRI done")


class Spine(_Model):
    """Spinal stability."""

    sins: Annotated[int, Field(ge=0, le=18)] | None = _field(
        "Spinal Instability Neoplastic Score", "points"
    )


class LongBone(_Model):
    """Long-bone fracture risk."""

    mirels: Annotated[int, Field(ge=4, le=12)] | None = _field("Mirels score", "points")


class Hcm(_Model):
    """Hypercalcaemia of malignancy."""

    symptomatic: bool | None = _field("Symptoms of hypercalcaemia")


class Gctb(_Model):
    """Giant cell tumour of bone."""

    resectability: (
        Literal["resectable_acceptable_morbidity", "resection_severe_morbidity", "unresectable"]
        | None
    ) = _field("Surgical resectability")
    on_denosumab: bool | None = _field("On denosumab for the giant cell tumour")
    new_osteolysis_or_pain_relapse: bool | None = _field(
        "New osteolysis or pain relapse on denosumab"
    )
    poor_mineralisation: bool | None = _field("Poor mineralisation on treatment")


class Myeloma(_Model):
    """Myeloma response."""

    vgpr_or_better: bool | None = _field("Very good partial response or better")


class Lung(_Model):
    """Lung cancer bone-metastasis risk markers."""

    bsp_positive: bool | None = _field("Bone sialoprotein positive")
    cea_raised: bool | None = _field("CEA raised")
    alp_raised: bool | None = _field("Alkaline phosphatase raised")


class Markers(_Model):
    """Tissue markers as reported (free text)."""

    glut1: str | None = _field("GLUT1 expression")
    inos: str | None = _field("iNOS expression")
    rankl: str | None = _field("RANKL expression")
    pdl1: str | None = _field("PD-L1 expression")


def _group(model: type[_Model]) -> Any:
    return Field(model(), description=model.__doc__)


class PatientProfile(_Model):
    """One patient, as the rules see them. Every clinical field may be absent (unknown)."""

    patient_id: str | None = _field("Local identifier (never logged)")
    age_years: Annotated[float, Field(ge=0, le=120)] | None = _field("Age", "years")
    sex: Literal["female", "male"] | None = _field("Sex (for Cockcroft-Gault)")
    weight_kg: Annotated[float, Field(gt=0, le=400)] | None = _field("Body weight", "kg")
    pregnant: bool | None = _field("Pregnant")
    reproductive_potential: bool | None = _field("Of reproductive potential")
    skeletal_maturity: Literal["mature", "immature"] | None = _field("Skeletal maturity")
    primary: Primary = _group(Primary)
    drivers: Drivers = _group(Drivers)
    bone: Bone = _group(Bone)
    mets: Mets = _group(Mets)
    ecog: Annotated[int, Field(ge=0, le=4)] | None = _field("ECOG performance status")
    life_expectancy_months: NonNegative | None = _field("Estimated life expectancy", "months")
    life_expectancy_bound: Bound | None = _field(
        "How life_expectancy_months is meant: exact, or a bound ('more than 12 months')"
    )
    labs: Labs = _group(Labs)
    dental: Dental = _group(Dental)
    meds: Meds = _group(Meds)
    neuro: Neuro = _group(Neuro)
    spine: Spine = _group(Spine)
    long_bone: LongBone = _group(LongBone)
    hcm: Hcm = _group(Hcm)
    gctb: Gctb = _group(Gctb)
    disease_status: Literal["responding", "stable", "progressing"] | None = _field(
        "Disease response"
    )
    myeloma: Myeloma = _group(Myeloma)
    lung: Lung = _group(Lung)
    markers: Markers = _group(Markers)


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
