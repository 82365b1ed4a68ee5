"""Profile -> one flat fact for the engine, plus the derived values computed once.

The fact is a flat dict keyed by field path (`labs.scr_mg_dl`, `derived.crcl_ml_min`); an
unknown value is simply absent, so the rules can tell unknown from false. Laboratory quantities
are converted to one canonical unit, named in the key. Derived values (corrected calcium,
Cockcroft-Gault creatinine clearance, the effective calcium reference range) are computed here,
once, and kept with their inputs so the report can show how each was obtained.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from bonecds.errors import Problem, ProfileError
from bonecds.knowledge.model import FieldTest, ReferenceDefaults
from bonecds.profile.fields import FIELDS
from bonecds.profile.histology import classify, histology_classes
from bonecds.profile.model import ANALYTE_UNITS, QUANTITY_FIELDS, PatientProfile, Quantity

__all__ = ["SIGNED_DERIVED", "Facts", "to_facts"]


@dataclass(frozen=True)
class DerivedValue:
    """A value bonecds computed, with the method and the inputs it used."""

    field: str
    value: float
    unit: str
    method: str
    inputs: dict[str, Any]


# Derived values that are differences, so a negative value is real (creatinine that fell).
SIGNED_DERIVED = frozenset({"derived.scr_rise_since_bma_start_mg_dl"})


@dataclass(frozen=True)
class Facts:
    """The flat fact the engine matches, and how each derived value was obtained."""

    values: dict[str, Any]
    derived: tuple[DerivedValue, ...]


def to_facts(
    profile: PatientProfile,
    defaults: ReferenceDefaults,
    comparisons: Mapping[str, Sequence[FieldTest]] | None = None,
) -> Facts:
    """Flatten a profile into the engine's fact and compute the derived values once.

    `comparisons` are the tests the rules make per field (`KnowledgeBase.comparisons`); a value
    given as a bound is kept only where it decides them all (without them, never)."""
    values = _flatten(profile)
    _undecided_bounds_unknown(values, comparisons)
    derived = [
        *_creatinine_clearance(values),
        *_corrected_calcium(values),
        *_calcium_reference(values, defaults),
        *_creatinine_rise(values),
        *_ionised_calcium_reference(values, defaults),
        *_metastases_counted(values),
    ]
    for item in derived:
        inputs = ", ".join(_input_path(name) for name in item.inputs)
        values[item.field] = _finite(item.value, inputs, f"to compute {item.field} from")
    if "labs.calcium_ionised_mg_dl" in values:
        values["derived.calcium_ionised_reference_default"] = (
            "labs.calcium_ionised_lln_mg_dl" not in values
            or "labs.calcium_ionised_uln_mg_dl" not in values
        )
    _histology_class(values)
    if "derived.crcl_ml_min" in values:
        measured = "labs.crcl_ml_min" in values
        values["derived.crcl_source"] = "measured" if measured else "computed"
    values["derived.calcium_reference_default"] = "labs.calcium_lln_mg_dl" not in values
    return Facts(values, tuple(derived))


# A value recorded as a bound ("less than 6 months") -> the field saying how it is meant.
_BOUND_FIELDS = {
    "life_expectancy_months": "life_expectancy_bound",
    "bone.lesion_count": "bone.lesion_count_bound",
    "mets.total_lesion_count": "mets.total_lesion_count_bound",
}


def _undecided_bounds_unknown(
    values: dict[str, Any], comparisons: Mapping[str, Sequence[FieldTest]] | None
) -> None:
    """Drop a bounded value unless it decides every comparison the rules make on its field
    exactly as the recorded number does: the true value may lie anywhere beyond the bound, so
    an undecided comparison must count as unknown (requested, its option conditional)."""
    for path, bound_path in _BOUND_FIELDS.items():
        bound = values.get(bound_path, "exact")
        if path in values and bound != "exact":
            tests = None if comparisons is None else comparisons.get(path, ())
            if tests is None or not all(_bound_decides(bound, values[path], t) for t in tests):
                del values[path]


def _bound_decides(bound: str, value: float, test: FieldTest) -> bool:
    """Whether every value beyond the bound gives `test` the result `value` itself gives.
    Beyond "more than v" is (v, inf); beyond "less than v" is below v."""
    if test.op not in ("gt", "gte", "lt", "lte") or not isinstance(test.value, int | float):
        return False  # another field, or an operator an interval cannot settle
    limit = test.value
    if bound == "more_than":
        return limit < value or (limit == value and test.op in ("gte", "lt"))
    return limit > value or (limit == value and test.op in ("gt", "lte"))


def _flatten(
    model: BaseModel, prefix: str = "", into: dict[str, Any] | None = None
) -> dict[str, Any]:
    values: dict[str, Any] = {} if into is None else into
    fields = model.__dict__  # a pydantic model's field values
    for name, path in _paths(type(model), prefix):
        value = fields[name]
        if value is None:
            continue
        if isinstance(value, Quantity):
            analyte, fact_path = QUANTITY_FIELDS[path]
            factor = ANALYTE_UNITS[analyte][value.unit]
            converted = round(value.value * factor, 2)
            values[fact_path] = _finite(converted, path, f"once converted to {fact_path}")
        elif isinstance(value, BaseModel):
            _flatten(value, f"{path}.", values)
        elif isinstance(value, list):
            values[path] = list(value)
            values[f"{path}.count"] = len(value)
        else:
            values[path] = value
    return values


def _finite(value: float, fields: str, outcome: str) -> float:
    """A converted or derived value, refused when it overflows a double: the engine takes every
    finite number, but an infinite one would compare as no value at all."""
    if math.isfinite(value):
        return value
    raise ProfileError([Problem("", fields, f"too large {outcome}")])


def _input_path(fact_path: str) -> str:
    spec = FIELDS.get(fact_path)
    return spec.input_path if spec and spec.input_path else fact_path


@functools.cache
def _paths(model: type[BaseModel], prefix: str) -> tuple[tuple[str, str], ...]:
    """Each field's name and fact path, in declared order (the patient id is no fact)."""
    paths = ((name, f"{prefix}{name}") for name in model.model_fields)
    return tuple((name, path) for name, path in paths if path != "patient_id")


def _creatinine_clearance(values: dict[str, Any]) -> list[DerivedValue]:
    if "labs.crcl_ml_min" in values:
        measured = values["labs.crcl_ml_min"]
        inputs = {"labs.crcl_ml_min": measured}
        return [DerivedValue("derived.crcl_ml_min", measured, "mL/min", "as reported", inputs)]
    needed = ("age_years", "weight_kg", "labs.scr_mg_dl", "sex")
    if any(name not in values for name in needed) or values["labs.scr_mg_dl"] <= 0:
        return []
    age, weight, scr, sex = (values[name] for name in needed)
    # Cockcroft & Gault, Nephron 1976: the formula the zoledronic-acid label bands use.
    crcl = (140 - age) * weight / (72 * scr) * (0.85 if sex == "female" else 1.0)
    method = "computed (Cockcroft-Gault: (140 - age) x weight / (72 x SCr), x 0.85 if female)"
    inputs = {name: values[name] for name in needed}
    return [DerivedValue("derived.crcl_ml_min", round(max(crcl, 0.0), 2), "mL/min", method, inputs)]


def _corrected_calcium(values: dict[str, Any]) -> list[DerivedValue]:
    if "labs.calcium_total_mg_dl" not in values or "labs.albumin_g_dl" not in values:
        return []
    total, albumin = values["labs.calcium_total_mg_dl"], values["labs.albumin_g_dl"]
    # Payne 1973, in the mg/dL form; SI inputs were converted first so one path gives one answer.
    corrected = round(total + 0.8 * (4.0 - albumin), 2)
    method = "albumin-corrected (Payne: Ca + 0.8 x (4.0 - albumin g/dL))"
    inputs = {"labs.calcium_total_mg_dl": total, "labs.albumin_g_dl": albumin}
    return [DerivedValue("derived.corrected_calcium_mg_dl", corrected, "mg/dL", method, inputs)]


def _creatinine_rise(values: dict[str, Any]) -> list[DerivedValue]:
    # The zoledronic-acid label withholds the drug on a rise from the creatinine at its start.
    needed = ("labs.scr_mg_dl", "meds.bma_start_scr_mg_dl")
    if any(name not in values for name in needed):
        return []
    current, start = (values[name] for name in needed)
    method = "serum creatinine now minus at the start of the current bone-modifying agent"
    inputs = {name: values[name] for name in needed}
    rise = round(current - start, 2)
    return [DerivedValue("derived.scr_rise_since_bma_start_mg_dl", rise, "mg/dL", method, inputs)]


# Metastases counted organ by organ; the bone count joins them. Other sites exist, so their sum
# is a lower bound of the total (SABR-COMET enrolled 1-5 metastases in all, not per organ).
_OTHER_SITE_COUNTS = (
    "mets.liver_lesion_count",
    "mets.lung_lesion_count",
    "mets.brain_lesion_count",
    "mets.adrenal_lesion_count",
    "mets.nodal_lesion_count",
)


def _metastases_counted(values: dict[str, Any]) -> list[DerivedValue]:
    """The metastases recorded by site, added up, once a site other than bone is counted. A
    bone count recorded as "less than" bounds nothing from below and is left out."""
    counted = {name: values[name] for name in _OTHER_SITE_COUNTS if name in values}
    if not counted:
        return []
    if "bone.lesion_count" in values and values.get("bone.lesion_count_bound") != "less_than":
        counted = {"bone.lesion_count": values["bone.lesion_count"], **counted}
    method = "sum of the metastases counted by site (at least this many in all)"
    return [
        DerivedValue(
            "derived.metastases_counted", float(sum(counted.values())), "", method, counted
        )
    ]


def _histology_class(values: dict[str, Any]) -> None:
    """The recorded class, else the class of the ICD-O-3 code, else of the free text."""
    recorded = values.get("primary.histology_class")
    code, text = values.get("primary.histology_icdo3"), values.get("primary.histology")
    found = recorded or classify(text, code)
    if found is not None:
        values["derived.histology_class"] = found
        values["derived.histology_radiosensitive"] = histology_classes()[found].radiosensitive


def _calcium_reference(values: dict[str, Any], defaults: ReferenceDefaults) -> list[DerivedValue]:
    return _reference(values, "calcium", defaults.calcium_lln_mg_dl, defaults.calcium_uln_mg_dl)


def _ionised_calcium_reference(
    values: dict[str, Any], defaults: ReferenceDefaults
) -> list[DerivedValue]:
    # Only with an ionised value: the limits mean nothing without one.
    if "labs.calcium_ionised_mg_dl" not in values:
        return []
    lln, uln = defaults.calcium_ionised_lln_mg_dl, defaults.calcium_ionised_uln_mg_dl
    return _reference(values, "calcium_ionised", lln, uln)


def _reference(values: dict[str, Any], name: str, lln: float, uln: float) -> list[DerivedValue]:
    derived = []
    for bound, default in (("lln", lln), ("uln", uln)):
        lab_key = f"labs.{name}_{bound}_mg_dl"
        if lab_key in values:
            value, method, inputs = (
                values[lab_key],
                "reporting laboratory",
                {lab_key: values[lab_key]},
            )
        else:
            value, method, inputs = default, "default (laboratory range not supplied)", {}
        derived.append(
            DerivedValue(f"derived.{name}_{bound}_mg_dl", value, "mg/dL", method, inputs)
        )
    return derived
