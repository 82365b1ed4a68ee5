"""The fields the rules may name: every value of the patient profile, flattened to a path
(`labs.scr_mg_dl`, `bone.spine_involved`), and the values bonecds derives from them
(`derived.crcl_ml_min`). Each has a type, its allowed values and the profile input behind it:
the rule loader checks conditions against them and the engine's facts use their paths.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel

from bonecds.profile.histology import histology_classes
from bonecds.profile.model import ANALYTE_UNITS, QUANTITY_FIELDS, PatientProfile
from bonecds.profile.plausibility import unwrap

__all__ = ["FIELDS", "FieldSpec", "FieldType"]

FieldType = Literal["bool", "number", "enum", "text", "enum-list", "text-list"]


@dataclass(frozen=True)
class FieldSpec:
    """A field the rules may name: its type, allowed values, and the profile input behind it."""

    path: str
    type: FieldType
    values: tuple[str, ...] = ()
    input_path: str = ""
    unit: str = ""


_DERIVED_FIELDS = (
    FieldSpec("derived.crcl_ml_min", "number", input_path="labs.crcl_ml_min", unit="mL/min"),
    FieldSpec("derived.crcl_source", "enum", ("measured", "computed"), "labs.crcl_ml_min"),
    FieldSpec("derived.corrected_calcium_mg_dl", "number", input_path="labs.albumin", unit="mg/dL"),
    FieldSpec("derived.calcium_lln_mg_dl", "number", input_path="labs.calcium_lln", unit="mg/dL"),
    FieldSpec("derived.calcium_uln_mg_dl", "number", input_path="labs.calcium_uln", unit="mg/dL"),
    FieldSpec("derived.calcium_reference_default", "bool", input_path="labs.calcium_lln"),
    FieldSpec(
        "derived.scr_rise_since_bma_start_mg_dl", "number", input_path="labs.scr", unit="mg/dL"
    ),
    FieldSpec(
        "derived.calcium_ionised_lln_mg_dl",
        "number",
        input_path="labs.calcium_ionised_lln",
        unit="mg/dL",
    ),
    FieldSpec(
        "derived.calcium_ionised_uln_mg_dl",
        "number",
        input_path="labs.calcium_ionised_uln",
        unit="mg/dL",
    ),
    FieldSpec(
        "derived.calcium_ionised_reference_default", "bool", input_path="labs.calcium_ionised_lln"
    ),
    FieldSpec("derived.metastases_counted", "number", input_path="mets.total_lesion_count"),
    # A missing class is asked for as the histology text clinicians record.
    FieldSpec("derived.histology_class", "enum", tuple(histology_classes()), "primary.histology"),
    FieldSpec("derived.histology_radiosensitive", "bool", input_path="primary.histology"),
)


def _field_specs(model: type[BaseModel], prefix: str = "") -> list[FieldSpec]:
    specs: list[FieldSpec] = []
    for name, info in model.model_fields.items():
        path = f"{prefix}{name}"
        kind = unwrap(info.annotation)
        if path in QUANTITY_FIELDS:
            analyte, fact_path = QUANTITY_FIELDS[path]
            unit = next(iter(ANALYTE_UNITS[analyte]))
            specs.append(FieldSpec(fact_path, "number", input_path=path, unit=unit))
        elif isinstance(kind, type) and issubclass(kind, BaseModel):
            specs.extend(_field_specs(kind, f"{path}."))
        elif path != "patient_id":
            spec = _leaf_spec(path, kind)
            specs.append(spec)
            if spec.type.endswith("-list"):
                specs.append(FieldSpec(f"{path}.count", "number", input_path=path))
    return specs


def _leaf_spec(path: str, kind: Any) -> FieldSpec:
    if typing.get_origin(kind) is list:
        item = unwrap(typing.get_args(kind)[0])
        if typing.get_origin(item) is Literal:
            return FieldSpec(path, "enum-list", tuple(typing.get_args(item)), path)
        return FieldSpec(path, "text-list", input_path=path)
    if typing.get_origin(kind) is Literal:
        return FieldSpec(path, "enum", tuple(typing.get_args(kind)), path)
    if kind is bool:
        return FieldSpec(path, "bool", input_path=path)
    if kind in (int, float):
        return FieldSpec(path, "number", input_path=path)
    return FieldSpec(path, "text", input_path=path)


FIELDS: dict[str, FieldSpec] = {
    spec.path: spec for spec in [*_field_specs(PatientProfile), *_DERIVED_FIELDS]
}
