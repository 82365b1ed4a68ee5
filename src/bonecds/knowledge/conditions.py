"""Rule conditions as written in YAML -> the condition tree, each field checked against the
profile vocabulary (with "did you mean") and each operand against the field's type."""

from __future__ import annotations

import difflib
from typing import Any

from bonecds.knowledge._source import Reader
from bonecds.knowledge.model import (
    COMPARISONS,
    All,
    Any_,
    Condition,
    Derived,
    FieldRef,
    FieldTest,
    Not,
    Proposed,
)
from bonecds.profile.fields import FIELDS

__all__ = ["check_field", "read_condition", "suggest"]


def read_condition(
    reader: Reader, raw: Any, path: tuple[Any, ...], rule_id: str
) -> Condition | None:
    if not isinstance(raw, dict) or not raw:
        reader.report("invalid-condition", "a condition must be a non-empty mapping", path, rule_id)
        return None
    if len(raw) == 1 and next(iter(raw)) in ("all", "any"):
        key = next(iter(raw))
        items = raw[key]
        if not isinstance(items, list) or not items:
            reader.report(
                "invalid-condition", f"'{key}' needs a non-empty list", (*path, key), rule_id
            )
            return None
        parsed = [
            read_condition(reader, item, (*path, key, i), rule_id) for i, item in enumerate(items)
        ]
        if any(item is None for item in parsed):
            return None
        return (All if key == "all" else Any_)(tuple(item for item in parsed if item is not None))
    if len(raw) == 1 and "not" in raw:
        inner = read_condition(reader, raw["not"], (*path, "not"), rule_id)
        return Not(inner) if inner is not None else None
    return _read_leaf(reader, raw, path, rule_id)


def _read_leaf(
    reader: Reader, raw: dict[str, Any], path: tuple[Any, ...], rule_id: str
) -> Condition | None:
    if "option" in raw:
        extra = set(raw) - {"option", "purpose"}
        purposes = raw.get("purpose", [])
        purposes = [purposes] if isinstance(purposes, str) else purposes
        if extra:
            reader.report(
                "unknown-key", f"unknown key(s) {sorted(extra)} in option test", path, rule_id
            )
            return None
        reader.refer("option", raw["option"], (*path, "option"), rule_id)
        return Proposed(
            str(raw["option"]), tuple(str(p) for p in purposes), reader.doc.position(path)[0]
        )
    if "derived" in raw:
        if len(raw) != 1:
            reader.report("unknown-key", "a derived test has only 'derived:'", path, rule_id)
            return None
        reader.refer("derived", raw["derived"], (*path, "derived"), rule_id)
        return Derived(str(raw["derived"]), reader.doc.position(path)[0])
    if "field" not in raw:
        reader.report(
            "invalid-condition", "expected all/any/not, field, option or derived", path, rule_id
        )
        return None
    operators = [key for key in raw if key != "field"]
    if len(operators) != 1 or operators[0] not in (
        *COMPARISONS,
        "in",
        "not_in",
        "contains",
        "not_contains",
        "known",
    ):
        hint = "one of: eq, ne, lt, lte, gt, gte, in, not_in, contains, not_contains, known"
        reader.report(
            "invalid-operator",
            f"a field test needs exactly one operator, got {operators}",
            path,
            rule_id,
            hint,
        )
        return None
    op = operators[0]
    value = raw[op]
    if isinstance(value, dict) and set(value) == {"field"}:
        value = FieldRef(str(value["field"]))
    test = FieldTest(str(raw["field"]), op, value, reader.doc.position(path)[0])
    if check_field(reader, test.field, (*path, "field"), rule_id):
        _check_operand(reader, test, (*path, op), rule_id)
    return test


def check_field(reader: Reader, name: Any, path: tuple[Any, ...], rule_id: str) -> bool:
    if isinstance(name, str) and name in FIELDS:
        return True
    hint = suggest(str(name), FIELDS)
    reader.report("unknown-field", f"'{name}' is not a profile field", path, rule_id, hint)
    return False


def _check_operand(reader: Reader, test: FieldTest, path: tuple[Any, ...], rule_id: str) -> None:
    spec = FIELDS[test.field]
    problem = _operand_problem(spec.type, spec.values, test)
    if isinstance(test.value, FieldRef):
        if not check_field(reader, test.value.field, path, rule_id):
            return
        if FIELDS[test.value.field].type != spec.type or test.op not in COMPARISONS:
            problem = (
                f"cannot compare '{test.field}' with field '{test.value.field}' using {test.op}"
            )
    if problem:
        reader.report("field-type", problem, path, rule_id)


def _operand_problem(kind: str, values: tuple[str, ...], test: FieldTest) -> str:
    op, value = test.op, test.value
    if op == "known":
        return "" if isinstance(value, bool) else "'known' takes true or false"
    if isinstance(value, FieldRef):
        return ""
    if kind.endswith("-list"):
        if op not in ("contains", "not_contains"):
            return f"'{test.field}' is a list: use contains/not_contains or known"
        return _enum_problem(values, [value], test.field) if kind == "enum-list" else ""
    if op in ("contains", "not_contains"):
        return f"'{test.field}' is not a list"
    items = value if op in ("in", "not_in") else [value]
    if op in ("in", "not_in") and not isinstance(value, list):
        return f"'{op}' takes a list"
    if kind == "number":
        ok = all(isinstance(v, int | float) and not isinstance(v, bool) for v in items)
        return "" if ok else f"'{test.field}' is a number"
    if kind == "bool":
        ok = op in ("eq", "ne") and all(isinstance(v, bool) for v in items)
        return "" if ok else f"'{test.field}' is true/false: use eq/ne with true or false"
    if op in ("lt", "lte", "gt", "gte"):
        return f"'{test.field}' is not a number"
    return _enum_problem(values, items, test.field) if kind == "enum" else ""


def _enum_problem(values: tuple[str, ...], items: list[Any], name: str) -> str:
    for item in items:
        if item not in values:
            hint = suggest(str(item), values)
            return f"'{item}' is not a value of '{name}'" + (f"; {hint}" if hint else "")
    return ""


def suggest(name: str, candidates: Any) -> str:
    close = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'?" if close else ""
