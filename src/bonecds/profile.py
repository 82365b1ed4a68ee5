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

from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError

from bonecds._yaml import YamlDocument, YamlProblem, parse_yaml
from bonecds.errors import ProfileError
from bonecds.plausibility import RANGES

# Accepted units per analyte, with the factor that converts each to the canonical unit (first).
ANALYTE_UNITS: dict[str, dict[str, float]] = {
    "creatinine": {"mg/dL": 1.0, "umol/L": 1 / 88.4, "µmol/L": 1 / 88.4},
    "calcium": {"mg/dL": 1.0, "mmol/L": 4.008},
    "albumin": {"g/dL": 1.0, "g/L": 0.1},
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
BmaAgent = Literal["denosumab", "zoledronic_acid", "pamidronate", "ibandronate"]
DentalRiskFactor = Literal[
    "poor_hygiene",
    "periodontal_disease",
    "ill_fitting_dentures",
    "smoking",
    "uncontrolled_diabetes",
    "head_neck_rt",
]
# Limits of every number live in one table, plausibility.RANGES, checked after validation.
Count = int
NonNegative = float


class Primary(_Model):
    site: PrimarySite | None = None
    histology: str | None = None
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
    pdl1_tps_pct: float | None = None


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
    crcl_ml_min: float | None = None
    on_dialysis: bool | None = None
    scr: Creatinine | None = None
    calcium_total: Calcium | None = None
    calcium_ionised: Calcium | None = None
    albumin: Albumin | None = None
    calcium_lln: Calcium | None = None
    calcium_uln: Calcium | None = None
    calcium_ionised_lln: Calcium | None = None
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
    bma_interval_weeks: float | None = None
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
    sins: int | None = None


class LongBone(_Model):
    mirels: int | None = None


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
    age_years: float | None = None
    sex: Literal["female", "male"] | None = None
    weight_kg: float | None = None
    pregnant: bool | None = None
    reproductive_potential: bool | None = None
    skeletal_maturity: Literal["mature", "immature"] | None = None
    primary: Primary = Primary()
    drivers: Drivers = Drivers()
    bone: Bone = Bone()
    mets: Mets = Mets()
    ecog: int | None = None
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
        raise ProfileError([f"{source}: {problem}"])
    try:
        profile = PatientProfile.model_validate(data)
    except ValidationError as error:
        problems, total = _describe(error, data, source, doc)
        named = {line.split(": ")[1] for line in problems if ": " in line}
        more = [p for p in _implausible(data, source, doc) if p.split(": ")[1] not in named]
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
        return json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
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


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
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


def _shape_problem(data: Any) -> str:
    """What makes parsed data unusable before validation, naming where: too many values or
    levels, a duplicate key, a number that is not finite, a string that cannot be encoded.
    Walked with a stack, not recursion, and stopped at MAX_VALUES."""
    stack: list[tuple[Any, tuple[Any, ...]]] = [(data, ())]
    for _ in range(MAX_VALUES + 1):
        if not stack:
            return ""
        node, path = stack.pop()
        found = _node_problem(node, path)
        if found:
            return found
        stack.extend((child, (*path, key)) for key, child in _children(node))
    return f"more than {MAX_VALUES} values; not a profile"


def _node_problem(node: Any, path: tuple[Any, ...]) -> str:
    if len(path) > MAX_DEPTH:
        return f"{'.'.join(map(str, path[:3]))}...: nested deeper than {MAX_DEPTH} levels"
    where = ".".join(map(str, path)) or "<profile>"
    if isinstance(node, _DuplicateKeys):
        return f"{'.'.join(map(str, (*path, node.duplicate)))}: duplicate key '{node.duplicate}'"
    if isinstance(node, float) and not math.isfinite(node):
        return f"{where}: not a finite number"
    if isinstance(node, str) and not _encodable(node):
        return f"{where}: not valid Unicode text"
    if isinstance(node, dict) and not all(_encodable(key) for key in node if isinstance(key, str)):
        return f"{where}: a key is not valid Unicode text"
    return ""


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


def _implausible(root: Any, source: str, doc: YamlDocument | None) -> list[str]:
    """Each number outside its plausible range, naming the field and the likely unit; `root`
    is a validated profile, or the raw data of one that failed (its plain numbers only)."""
    problems = []
    for path, limits in RANGES.items():
        amount, analyte = _canonical(_value_at(root, path))
        if amount is None or (math.isfinite(amount) and limits.holds(amount)):
            continue
        message = f"outside the plausible range {limits.describe()}"
        if analyte:
            message += f" for {analyte}{_likely_unit(_value_at(root, path), analyte, limits)}"
        problems.append(f"{_where(source, doc, tuple(path.split('.')))}: {path}: {message}")
    return problems


def _value_at(root: Any, path: str) -> Any:
    node = root
    for part in path.split("."):
        node = node.get(part) if isinstance(node, dict) else getattr(node, part, None)
        if node is None:
            return None
    return node


def _canonical(value: Any) -> tuple[float | None, str]:
    """A number in its canonical unit, with the analyte's name for a laboratory quantity."""
    if isinstance(value, Quantity):
        analyte = next(a for a, units in ANALYTE_UNITS.items() if value.unit in units)
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


def _bounded(problems: list[str], total: int | None = None) -> list[str]:
    """The first MAX_PROBLEMS of `total` problems (default: all of `problems`)."""
    total = len(problems) if total is None else total
    if total <= MAX_PROBLEMS:
        return problems
    return [*problems[:MAX_PROBLEMS], f"... and {total - MAX_PROBLEMS} more problems"]


def _describe(
    error: ValidationError, data: Any, source: str, doc: YamlDocument | None
) -> tuple[list[str], int]:
    # Built from loc and type only: errors() also carries the input values (patient data).
    # Only the first MAX_PROBLEMS get a message (no did-you-mean search per unknown key);
    # the count says how many there were.
    items = error.errors(include_input=False, include_url=False)
    problems = []
    for item in items[:MAX_PROBLEMS]:
        loc = _data_path(item["loc"], data)
        path = ".".join(str(part) for part in loc) or "<profile>"
        problems.append(f"{_where(source, doc, loc)}: {path}: {_message(item, loc)}")
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
