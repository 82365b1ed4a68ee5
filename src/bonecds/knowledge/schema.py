"""JSON Schemas for editors: the patient profile, and the rule-file format.

The rule-file schema is built from the same effect models the loader validates with, so the two
cannot drift; `rules/rule-file.schema.json` is a committed copy that a test keeps current.
"""

from __future__ import annotations

import json
from typing import Any

from bonecds.knowledge.i18n import TRANSLATED
from bonecds.knowledge.load import KINDS, REQUIRED_RULE_KEYS, RULE_ID, RULE_KEYS, STATUSES
from bonecds.knowledge.model import EFFECT_KEYS, LEAF_OPERATORS, Citation, Translation
from bonecds.profile.fields import FIELDS
from bonecds.profile.model import PatientProfile

__all__ = ["dump", "patient_schema", "rule_file_schema"]


def patient_schema() -> dict[str, Any]:
    return PatientProfile.model_json_schema()


def rule_file_schema() -> dict[str, Any]:
    """The JSON Schema of a rule file (`{section, title, rules: [...]}`)."""
    defs: dict[str, Any] = {}
    effect_refs = []
    for key, model in EFFECT_KEYS.items():
        schema = model.model_json_schema(ref_template="#/$defs/{model}")
        defs.update(schema.pop("$defs", {}))
        defs[f"effect_{key}"] = schema
        effect_refs.append({"$ref": f"#/$defs/effect_{key}"})
    for model in (Citation, Translation):
        schema = model.model_json_schema(ref_template="#/$defs/{model}")
        defs.update(schema.pop("$defs", {}))
        defs[model.__name__] = schema
    defs["effect"] = {"oneOf": effect_refs}
    defs["condition"] = _condition_schema()
    defs["branch"] = _strict(
        {
            "name": {"type": "string"},
            "when": {"$ref": "#/$defs/condition"},
            "needs": _field_list(),
            "effects": {"type": "array", "items": {"$ref": "#/$defs/effect"}},
        },
        ["name", "effects"],
    )
    defs["rule"] = _rule_schema()
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "bonecds rule file",
        **_strict(
            {
                "section": {"type": "string"},
                "title": {"type": "string"},
                "rules": {"type": "array", "items": {"$ref": "#/$defs/rule"}},
            },
            ["rules"],
        ),
        "$defs": defs,
    }


def _strict(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
    }


def _field_list() -> dict[str, Any]:
    return {"type": "array", "items": {"enum": sorted(FIELDS)}}


def _rule_schema() -> dict[str, Any]:
    """The rule mapping: its keys and required keys are the loader's (RULE_KEYS)."""
    properties = {
        "id": {"type": "string", "pattern": RULE_ID},
        "catalogue": {"type": "string"},
        "version": {"type": "integer", "minimum": 1},
        "status": {"enum": list(STATUSES)},
        "title": {"type": "string"},
        "kind": {"enum": list(KINDS)},
        "when": {"$ref": "#/$defs/condition"},
        "needs": _field_list(),
        "effects": {"type": "array", "items": {"$ref": "#/$defs/effect"}},
        "branches": {"type": "array", "items": {"$ref": "#/$defs/branch"}},
        "rationale": {"type": "string"},
        "evidence": {"type": "string"},
        "citations": {"type": "array", "items": {"$ref": "#/$defs/Citation"}},
        "translations": {
            "type": "object",
            "propertyNames": {"enum": list(TRANSLATED)},
            "additionalProperties": {"$ref": "#/$defs/Translation"},
        },
    }
    if set(properties) != set(RULE_KEYS):
        raise AssertionError("the rule schema and the loader's RULE_KEYS differ")
    return _strict(properties, list(REQUIRED_RULE_KEYS))


def _condition_schema() -> dict[str, Any]:
    ref = {"$ref": "#/$defs/condition"}
    leaf = {
        "type": "object",
        "properties": {"field": {"enum": sorted(FIELDS)}},
        "required": ["field"],
        "minProperties": 2,
        "maxProperties": 2,
        "propertyNames": {"enum": ["field", *LEAF_OPERATORS]},
    }
    return {
        "oneOf": [
            _strict({"all": {"type": "array", "items": ref, "minItems": 1}}, ["all"]),
            _strict({"any": {"type": "array", "items": ref, "minItems": 1}}, ["any"]),
            _strict({"not": ref}, ["not"]),
            _strict(
                {"option": {"type": "string"}, "purpose": {"type": ["string", "array"]}}, ["option"]
            ),
            _strict({"derived": {"type": "string"}}, ["derived"]),
            leaf,
        ]
    }


def dump(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
