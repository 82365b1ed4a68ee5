"""The patient profile: the vocabulary of the rule catalogue (§0.3) as strict pydantic models.

`None` always means *unknown*, never false or zero. Every number must be finite and inside its
plausible range (plausibility.RANGES: ECOG 7, SINS 19, negative counts, a creatinine of 106
mg/dL are refused); decision thresholds live only in the rules. Laboratory values carry their
unit and are checked against the units accepted for that analyte.
"""

from __future__ import annotations

import difflib
import json
import math
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, JsonValue, ValidationError

from bonecds._yaml import YamlDocument, YamlProblem, parse_yaml
from bonecds.errors import Problem, ProfileError
from bonecds.profile.plausibility import RANGES

__all__ = [
    "ANALYTE_UNITS",
    "MAX_INPUT_BYTES",
    "QUANTITY_FIELDS",
    "DentalRiskFactor",
    "HistologyClassId",
    "PatientProfile",
    "PrimarySite",
    "Quantity",
    "check_plausible",
    "decode_text",
    "load_profile",
    "loads_json",
    "mark_duplicates",
    "parse_profile",
    "read_structured",
    "read_text",
    "refuse_duplicate_keys",
]

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

# Each laboratory field's analyte and fact path: the analyte comes from the field, never from
# its unit (mmol/L and mg/dL are shared by calcium, magnesium and phosphate).
QUANTITY_FIELDS: dict[str, tuple[str, str]] = {
    "labs.scr": ("creatinine", "labs.scr_mg_dl"),
    "labs.calcium_total": ("calcium", "labs.calcium_total_mg_dl"),
    "labs.calcium_ionised": ("calcium", "labs.calcium_ionised_mg_dl"),
    "labs.albumin": ("albumin", "labs.albumin_g_dl"),
    "labs.calcium_lln": ("calcium", "labs.calcium_lln_mg_dl"),
    "labs.calcium_uln": ("calcium", "labs.calcium_uln_mg_dl"),
    "labs.calcium_ionised_lln": ("calcium", "labs.calcium_ionised_lln_mg_dl"),
    "labs.vitamin_d_25oh": ("vitamin_d", "labs.vitamin_d_25oh_ng_ml"),
    "labs.magnesium": ("magnesium", "labs.magnesium_mg_dl"),
    "labs.phosphate": ("phosphate", "labs.phosphate_mg_dl"),
    "meds.bma_start_scr": ("creatinine", "meds.bma_start_scr_mg_dl"),
    "labs.calcium_ionised_uln": ("calcium", "labs.calcium_ionised_uln_mg_dl"),
}

_QUANTITY_TEXT = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*(\S+)\s*$")


class _Model(BaseModel):
    # allow_inf_nan: an infinite or NaN value would reach the engine as null and switch rules off.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


class Quantity(_Model):
    """A measured value with its unit, e.g. `{value: 2.4, unit: mmol/L}` or `"2.4 mmol/L"`."""

    value: float
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
            try:
                raw = {**raw, "value": float(raw["value"])}
            except OverflowError:
                raise ValueError("not a finite number") from None
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
# The classes of data/histology.yaml (bonecds.profile.histology); a test keeps the two equal.
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
# Limits of every number live in one table, plausibility.RANGES, checked after validation.
Count = int
NonNegative = float


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
    pdl1_tps_pct: float | None = _field("PD-L1 tumour proportion score", "%")


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

    crcl_ml_min: float | None = _field(
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
    bma_interval_weeks: float | None = _field("Dosing interval of the current agent", "weeks")
    bma_dose_mg: NonNegative | None = _field("Dose per administration of the current agent", "mg")
    bma_doses_given: Count | None = _field("Doses of the current agent given so far", "doses")
    bma_start_crcl_ml_min: float | None = _field(
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

    sins: int | None = _field("Spinal Instability Neoplastic Score", "points")


class LongBone(_Model):
    """Long-bone fracture risk."""

    mirels: int | None = _field("Mirels score", "points")


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
    age_years: float | None = _field("Age", "years")
    sex: Literal["female", "male"] | None = _field("Sex (for Cockcroft-Gault)")
    weight_kg: float | None = _field("Body weight", "kg")
    pregnant: bool | None = _field("Pregnant")
    reproductive_potential: bool | None = _field("Of reproductive potential")
    skeletal_maturity: Literal["mature", "immature"] | None = _field("Skeletal maturity")
    primary: Primary = _group(Primary)
    drivers: Drivers = _group(Drivers)
    bone: Bone = _group(Bone)
    mets: Mets = _group(Mets)
    ecog: int | None = _field("ECOG performance status")
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


# Input limits (README "Input limits"): far above any real profile or FHIR Bundle, low enough
# that hostile input is refused within a second and never exhausts memory.
MAX_INPUT_BYTES = 2 * 1024 * 1024
MAX_DEPTH = 64
MAX_VALUES = 10_000
MAX_PROBLEMS = 20


def parse_profile(
    data: Any, source: str = "<profile>", doc: YamlDocument | None = None
) -> PatientProfile:
    """Validate plain data as a profile; errors name the field path (and line when known)."""
    if not isinstance(data, dict):
        raise ProfileError([f"{source}: a patient profile must be a mapping of fields"])
    problem = _shape_problem(data)
    if problem:
        raise ProfileError([Problem(source, *problem)])
    try:
        profile = PatientProfile.model_validate(data)
    except ValidationError as error:
        problems, total = _describe(error, data, source, doc)
        named = {problem.field for problem in problems}
        more = [p for p in _implausible(data, source, doc) if p.field not in named]
        raise ProfileError(_bounded([*problems, *more], total + len(more))) from None
    return check_plausible(profile, source, doc)


def check_plausible(
    profile: PatientProfile, source: str = "<profile>", doc: YamlDocument | None = None
) -> PatientProfile:
    """The profile, if every number in it is within plausibility.RANGES (a profile built
    directly with the model has had no other check)."""
    problems = _implausible(profile, source, doc)
    if problems:
        raise ProfileError(_bounded(problems))
    return profile


def load_profile(path: Path | str, text: str | None = None) -> PatientProfile:
    """Read a profile from a YAML or JSON file (or the given text, read from `path`)."""
    source = str(path)
    if text is None:
        text = read_text(Path(path), source)
    data, doc = read_structured(text, source)
    return parse_profile(data, source, doc)


def read_text(path: Path, source: str) -> str:
    """A file's UTF-8 text, refusing more than MAX_INPUT_BYTES without reading on
    (`/dev/zero` never ends)."""
    try:
        with path.open("rb") as stream:
            raw = stream.read(MAX_INPUT_BYTES + 1)
    except OSError as error:
        raise ProfileError([f"{source}: cannot read file ({error.__class__.__name__})"]) from None
    return decode_text(raw, source)


def decode_text(raw: bytes, source: str) -> str:
    if len(raw) > MAX_INPUT_BYTES:
        raise ProfileError([f"{source}: larger than {MAX_INPUT_BYTES} bytes; not a profile"])
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ProfileError([f"{source}: not UTF-8 text"]) from None


def read_structured(text: str, source: str) -> tuple[Any, YamlDocument | None]:
    """Parse JSON (when it looks like JSON) or YAML text, naming file:line on syntax errors.
    Refused: duplicate keys, non-finite numbers, YAML aliases and tags, nesting deeper than
    MAX_DEPTH, more than MAX_INPUT_BYTES, unencodable strings."""
    if len(text) > MAX_INPUT_BYTES:
        raise ProfileError([f"{source}: larger than {MAX_INPUT_BYTES} bytes; not a profile"])
    if text.lstrip().startswith(("{", "[")):
        data, doc = loads_json(text, source), None
    else:
        doc = _yaml_document(text, source)
        data = doc.data
    return data, doc


def loads_json(text: str | bytes, source: str) -> Any:
    """Strict JSON: NaN and Infinity are refused here; a repeated key, 1e999 (infinite) and
    nesting deeper than MAX_DEPTH by parse_profile, which names where."""
    if isinstance(text, bytes):
        text = decode_text(text, source)
    try:
        return json.loads(text, object_pairs_hook=mark_duplicates, parse_constant=_no_constant)
    except json.JSONDecodeError as error:
        where = f"{source}:{error.lineno}:{error.colno}"
        raise ProfileError([f"{where}: malformed JSON: {error.msg}"]) from None
    except RecursionError:
        raise ProfileError([f"{source}: nested deeper than {MAX_DEPTH} levels"]) from None
    except ValueError as error:  # an integer of thousands of digits, a bad constant
        raise ProfileError([f"{source}: malformed JSON: {_first_line(error)}"]) from None


class _DuplicateKeys(dict[str, Any]):
    """A JSON object that repeated a key: refused by _shape_problem, which knows its path."""

    duplicate = ""


def mark_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A json `object_pairs_hook`: an object that repeats a key is marked, so that
    `refuse_duplicate_keys` or the profile checks can name its path."""
    result = dict(pairs)
    if len(result) == len(pairs):
        return result
    marked = _DuplicateKeys(result)
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            marked.duplicate = key
            break
        seen.add(key)
    return marked


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def _yaml_document(text: str, source: str) -> YamlDocument:
    try:
        return parse_yaml(text, max_depth=MAX_DEPTH, max_nodes=MAX_VALUES)
    except YamlProblem as problem:
        where = f"{source}:{problem.line}:{problem.column}"
        raise ProfileError([f"{where}: {problem.message}"]) from None


def _shape_problem(data: Any) -> tuple[str, str] | None:
    """What makes parsed data unusable before validation, naming where: too many values or
    levels, a duplicate key, a number that is not finite, a string that cannot be encoded.
    Walked with a stack, not recursion, and stopped at MAX_VALUES."""
    stack: list[tuple[Any, tuple[Any, ...]]] = [(data, ())]
    for _ in range(MAX_VALUES + 1):
        if not stack:
            return None
        node, path = stack.pop()
        found = _node_problem(node, path)
        if found:
            return found
        stack.extend((child, (*path, key)) for key, child in _children(node))
    return "", f"more than {MAX_VALUES} values; not a profile"


def refuse_duplicate_keys(data: Any, source: str) -> None:
    """A JSON document that is not a profile (a FHIR Bundle) still never loses a repeated key
    silently: refused, naming the key path. Its size is bounded by MAX_INPUT_BYTES."""
    stack: list[tuple[Any, tuple[Any, ...]]] = [(data, ())]
    while stack:
        node, path = stack.pop()
        if isinstance(node, _DuplicateKeys):
            raise ProfileError([Problem(source, *_duplicate(node, path))])
        stack.extend((child, (*path, key)) for key, child in _children(node))


def _duplicate(node: _DuplicateKeys, path: tuple[Any, ...]) -> tuple[str, str]:
    return ".".join(map(str, (*path, node.duplicate))), f"duplicate key '{node.duplicate}'"


def _node_problem(node: Any, path: tuple[Any, ...]) -> tuple[str, str] | None:
    """(where, what) of a node that makes the data unusable, else None."""
    if len(path) > MAX_DEPTH:
        return f"{'.'.join(map(str, path[:3]))}...", f"nested deeper than {MAX_DEPTH} levels"
    where = ".".join(map(str, path)) or "<profile>"
    if isinstance(node, _DuplicateKeys):
        return _duplicate(node, path)
    if isinstance(node, float) and not math.isfinite(node):
        return where, "not a finite number"
    if isinstance(node, str) and not _encodable(node):
        return where, "not valid Unicode text"
    if isinstance(node, dict) and not all(_encodable(key) for key in node if isinstance(key, str)):
        return where, "a key is not valid Unicode text"
    return None


def _children(node: Any) -> Any:
    if isinstance(node, dict):
        return node.items()
    return enumerate(node) if isinstance(node, list) else ()


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate, e.g. "\ud800" in JSON
        return False
    return True


def _first_line(error: Exception) -> str:
    return str(error).splitlines()[0] if str(error) else error.__class__.__name__


def _implausible(root: Any, source: str, doc: YamlDocument | None) -> list[Problem]:
    """Each number outside its plausible range, naming the field and the likely unit; `root`
    is a validated profile, or the raw data of one that failed (its plain numbers only)."""
    problems = []
    for path, limits in RANGES.items():
        amount, analyte = _canonical(_value_at(root, path), path)
        if amount is None or (math.isfinite(amount) and limits.holds(amount)):
            continue
        message = f"outside the plausible range {limits.describe()}"
        if analyte:
            message += f" for {analyte}{_likely_unit(_value_at(root, path), analyte, limits)}"
        problems.append(Problem(_where(source, doc, tuple(path.split("."))), path, message))
    return problems


def _value_at(root: Any, path: str) -> Any:
    node = root
    for part in path.split("."):
        node = node.get(part) if isinstance(node, dict) else getattr(node, part, None)
        if node is None:
            return None
    return node


def _canonical(value: Any, path: str) -> tuple[float | None, str]:
    """A number in its canonical unit, with the analyte's name for a laboratory quantity."""
    if isinstance(value, Quantity):
        analyte = QUANTITY_FIELDS[path][0]
        return value.value * ANALYTE_UNITS[analyte][value.unit], analyte
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return float(value), ""
        except OverflowError:
            return math.inf, ""
    return None, ""


def _likely_unit(value: Any, analyte: str, limits: Any) -> str:
    for unit, factor in ANALYTE_UNITS[analyte].items():
        if unit not in (value.unit, "umol/L") and limits.holds(value.value * factor):
            return f"; was the unit {unit}?"
    return ""


def _where(source: str, doc: YamlDocument | None, loc: tuple[Any, ...]) -> str:
    if doc is None:
        return source
    line, column = doc.position(loc)
    return f"{source}:{line}:{column}"


def _bounded(problems: list[Problem], total: int | None = None) -> list[Problem | str]:
    """The first MAX_PROBLEMS of `total` problems (default: all of `problems`)."""
    total = len(problems) if total is None else total
    if total <= MAX_PROBLEMS:
        return list(problems)
    return [*problems[:MAX_PROBLEMS], f"... and {total - MAX_PROBLEMS} more problems"]


def _describe(
    error: ValidationError, data: Any, source: str, doc: YamlDocument | None
) -> tuple[list[Problem], int]:
    # Built from loc and type only: errors() also carries the input values (patient data).
    # Only the first MAX_PROBLEMS get a message (no did-you-mean search per unknown key);
    # the count says how many there were.
    items = error.errors(include_input=False, include_url=False)
    problems = []
    for item in items[:MAX_PROBLEMS]:
        loc = _data_path(item["loc"], data)
        path = ".".join(str(part) for part in loc) or "<profile>"
        problems.append(Problem(_where(source, doc, loc), path, _message(item, loc)))
    return problems, len(items)


def _data_path(loc: tuple[Any, ...], data: Any) -> tuple[Any, ...]:
    """The error location as a path in the input: pydantic inserts steps of its own (a
    validator 'function-before[check()]', a Literal tag) that are not keys of the data, while
    a user's key may itself contain '[' or start with 'literal'."""
    path: list[Any] = []
    node = data
    for part in loc:
        if _has_step(node, part):
            node = node[part]
        elif isinstance(part, str) and _is_validator_tag(part):
            continue
        else:
            node = None
        path.append(part)
    return tuple(path)


def _has_step(node: Any, part: Any) -> bool:
    if isinstance(node, dict):
        return part in node
    return isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)


def _sibling_fields(parent: tuple[Any, ...]) -> list[str]:
    """Field names of the model found by following `parent` from PatientProfile."""
    model: Any = PatientProfile
    for part in parent:
        info = model.model_fields.get(part) if isinstance(part, str) else None
        if info is None or not isinstance(info.default, BaseModel):
            return []
        model = type(info.default)
    return list(model.model_fields)


def _is_validator_tag(part: str) -> bool:
    # Some pydantic versions add a step like 'function-before[check()]' or 'literal[...]'.
    return "[" in part


def _message(item: Any, loc: tuple[Any, ...]) -> str:
    kind = item["type"]
    if kind == "extra_forbidden":
        if not loc:
            return "unknown field"
        close = difflib.get_close_matches(str(loc[-1]), _sibling_fields(loc[:-1]), n=1, cutoff=0.6)
        return f"unknown field; did you mean '{close[0]}'?" if close else "unknown field"
    if kind == "value_error":
        return str(item["msg"]).removeprefix("Value error, ")
    if kind == "finite_number":
        return "not a finite number"
    return str(item["msg"])
